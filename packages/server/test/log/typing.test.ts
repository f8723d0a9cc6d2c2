import { createTRPCClient } from '@trpc/client';
import { initTRPC } from '@trpc/server';
import { longPollLink } from '@trpc-longpoll/client';
import { createMemoryEventLog } from '@trpc-longpoll/server';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';

/** What a client gets for a `tracked()` event (tRPC's `TrackedData`, which it does not export by name). */
interface TrackedData<T> {
  id: string;
  data: T;
}

interface Message {
  text: string;
  at: number;
}
type Topics = { [K: `room:${string}`]: Message } & { presence: { user: string; online: boolean } };

function build() {
  const log = createMemoryEventLog<Topics>();
  const t = initTRPC.create();
  const router = t.router({
    onMessage: t.procedure
      .input(z.object({ room: z.string(), lastEventId: z.string().nullish() }))
      .subscription(async function* ({ input, signal }) {
        yield* log.subscribe(`room:${input.room}`, { lastEventId: input.lastEventId, signal });
      }),
    onPresence: t.procedure.subscription(async function* ({ signal }) {
      yield* log.subscribe('presence', { signal });
    }),
  });
  return { log, router };
}

describe('event log typing, end to end', () => {
  it("carries a topic's data type to the client's onData", () => {
    const { router } = build();
    const client = createTRPCClient<typeof router>({ links: [longPollLink({ url: 'http://127.0.0.1:9/unused' })] });
    // Type-level only: never called, so nothing connects.
    const typeOnly = () => {
      client.onMessage.subscribe(
        { room: 'lobby' },
        { onData: (value) => expectTypeOf(value).toEqualTypeOf<TrackedData<Message>>() },
      );
      client.onPresence.subscribe(undefined, {
        onData: (value) => expectTypeOf(value).toEqualTypeOf<TrackedData<{ user: string; online: boolean }>>(),
      });
    };
    expect(typeof typeOnly).toBe('function');
  });

  it('checks topics and data at publish', async () => {
    const { log } = build();
    expectTypeOf(log.publish<'room:a'>).parameter(1).toEqualTypeOf<Message>();
    await log.publish(`room:${'lobby'}`, { text: 'hi', at: 1 });
    // @ts-expect-error a message lacks `at`
    await log.publish('room:lobby', { text: 'hi' });
    // @ts-expect-error presence data is not a message
    await log.publish('presence', { text: 'hi', at: 1 });
    // @ts-expect-error no such topic
    await log.publish('rooms', { text: 'hi', at: 1 });
    await log.close();
  });

  it('yields tracked envelopes a procedure can pass through', async () => {
    const { log, router } = build();
    const controller = new AbortController();
    const caller = router.createCaller({}, { signal: controller.signal });
    const iterable = await caller.onMessage({ room: 'r', lastEventId: null });
    const iterator = iterable[Symbol.asyncIterator]();
    const next = iterator.next();
    await new Promise((resolve) => setTimeout(resolve, 10));
    const id = await log.publish('room:r', { text: 'x', at: 2 });
    const step = await next;
    expect(step.value).toEqual([id, { text: 'x', at: 2 }, expect.anything()]);
    controller.abort();
    await log.close();
  });
});
