import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink } from '@trpc/client';
import { EventSource } from 'eventsource';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import { createLongPollClient, createTestRouter, recorder, startServer, useCleanup, type Recorder, type TestRouter } from '../src';

/**
 * The long-poll link must be a drop-in for tRPC's own SSE link: the same
 * router, on the same server, should tell the application the same story.
 */
const cleanup = useCleanup();

async function setUp() {
  const fixture = createTestRouter();
  const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }) });
  cleanup(() => server.close());
  const longPoll = createLongPollClient<TestRouter>(server.url);
  const sse = createTRPCClient<TestRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({ url: server.url, transformer: superjson, EventSource }),
        false: httpBatchLink({ url: server.url, transformer: superjson }),
      }),
    ],
  });
  return { fixture, server, clients: { longPoll, sse } };
}

describe('the envelopes match httpSubscriptionLink', () => {
  it('happy path with tracked events', async () => {
    const { fixture, clients } = await setUp();
    const stories: Record<string, Recorder> = {};
    for (const [name, client] of Object.entries(clients)) {
      const rec = recorder();
      stories[name] = rec;
      const sub = client.post.onAdd.subscribe(undefined, rec.callbacks);
      cleanup(() => sub.unsubscribe());
      await rec.untilStarted();
    }
    fixture.feed.publish({ text: 'one', at: new Date(1) });
    fixture.feed.publish({ text: 'two', at: new Date(2) });
    for (const rec of Object.values(stories)) await rec.untilData(2);
    // Stories without error details, which differ by transport wording.
    expect(stories.longPoll!.story()).toEqual(['connecting', 'started', 'pending', 'data', 'data']);
    expect(stories.longPoll!.story()).toEqual(stories.sse!.story());
    expect(stories.longPoll!.data()).toEqual(stories.sse!.data());
    expect(stories.longPoll!.data()).toEqual([
      { id: '1', data: { text: 'one', at: new Date(1) } },
      { id: '2', data: { text: 'two', at: new Date(2) } },
    ]);
  });

  it('server-ended subscription: stopped, idle, complete', async () => {
    const { clients } = await setUp();
    const stories: Record<string, Recorder> = {};
    for (const [name, client] of Object.entries(clients)) {
      const rec = recorder();
      stories[name] = rec;
      client.countdown.subscribe({ from: 5 }, rec.callbacks);
      await rec.untilEnded();
    }
    expect(stories.longPoll!.story()).toEqual(['connecting', 'started', 'pending', 'data', 'data', 'data', 'stopped', 'idle', 'complete']);
    expect(stories.longPoll!.story()).toEqual(stories.sse!.story());
    expect(stories.longPoll!.data()).toEqual([5, 4, 3]);
    expect(stories.sse!.data()).toEqual([5, 4, 3]);
  });

  it('fatal error', async () => {
    const { clients } = await setUp();
    const stories: Record<string, Recorder> = {};
    for (const [name, client] of Object.entries(clients)) {
      const rec = recorder();
      stories[name] = rec;
      const sub = client.forbidden.subscribe(undefined, rec.callbacks);
      cleanup(() => sub.unsubscribe());
      await rec.untilEnded();
    }
    // Both links announce `started` first: the procedure only throws once iterated.
    expect(stories.longPoll!.story()).toEqual(['connecting', 'started', 'pending', 'error']);
    expect(stories.longPoll!.story()).toEqual(stories.sse!.story());
    const errorOf = (rec: Recorder) => {
      const error = rec.errors()[0]!;
      const { stack: _stack, ...data } = error.data as Record<string, unknown>;
      return { message: error.message, code: error.shape?.code, data };
    };
    expect(errorOf(stories.longPoll!)).toEqual({
      message: 'No access',
      code: -32003,
      data: { code: 'FORBIDDEN', httpStatus: 403, path: 'forbidden', reason: 'policy 7' },
    });
    expect(errorOf(stories.longPoll!)).toEqual(errorOf(stories.sse!));
  });
});
