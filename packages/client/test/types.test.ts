import { createTRPCClient, httpBatchLink, splitLink, TRPCClientError } from '@trpc/client';
import { initTRPC, tracked } from '@trpc/server';
import superjson from 'superjson';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { longPollLink, type LongPollCursorError } from '../src';

/**
 * Compile-time contract: `pnpm test` runs tsc over this file, so a broken
 * rule fails the build (including every `@ts-expect-error` that stops erroring).
 */

const withTransformer = initTRPC.create({ transformer: superjson });
const richRouter = withTransformer.router({
  feed: withTransformer.procedure.input(z.object({ room: z.string(), lastEventId: z.string().nullish() })).subscription(async function* () {
    yield tracked('1', { at: new Date(), text: 'hi' });
  }),
  count: withTransformer.procedure.input(z.object({ from: z.number() })).subscription(async function* ({ input }) {
    yield input.from;
  }),
  hello: withTransformer.procedure.query(() => 'world'),
});
type RichRouter = typeof richRouter;

const plain = initTRPC.create();
const plainRouter = plain.router({
  count: plain.procedure.subscription(async function* () {
    yield 1;
  }),
});
type PlainRouter = typeof plainRouter;


describe('types', () => {
  const client = createTRPCClient<RichRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: longPollLink<RichRouter>({ url: '/trpc', transformer: superjson }),
        false: httpBatchLink({ url: '/trpc', transformer: superjson }),
      }),
    ],
  });

  it('infers the input', () => {
    expectTypeOf<Parameters<typeof client.count.subscribe>[0]>().toEqualTypeOf<{ from: number }>();
    expectTypeOf<Parameters<typeof client.feed.subscribe>[0]>().toEqualTypeOf<{ room: string; lastEventId?: string | null | undefined }>();
  });

  // Only compiled, never called: subscribing would start polling.
  function typeOnly() {
    client.count.subscribe(
      { from: 1 },
      {
        onData: (value) => expectTypeOf(value).toEqualTypeOf<number>(),
        onError: (error) => {
          expectTypeOf(error).toEqualTypeOf<TRPCClientError<RichRouter>>();
        },
      },
    );
    client.feed.subscribe(
      { room: 'a' },
      { onData: (event) => expectTypeOf(event).toEqualTypeOf<{ id: string; data: { at: Date; text: string } }>() },
    );
  }

  it('infers the output, with tracked events as { id, data }, and the router-typed error', () => {
    expectTypeOf(typeOnly).toBeFunction();
    expectTypeOf<LongPollCursorError<RichRouter>>().toExtend<TRPCClientError<RichRouter>>();
  });

  it('requires the transformer exactly when the router has one', () => {
    longPollLink<RichRouter>({ url: '/trpc', transformer: superjson });
    // @ts-expect-error: the router has a transformer, so the link must be given it
    longPollLink<RichRouter>({ url: '/trpc' });

    longPollLink<PlainRouter>({ url: '/trpc' });
    // @ts-expect-error: the router has no transformer, so none may be given
    longPollLink<PlainRouter>({ url: '/trpc', transformer: superjson });
  });

  it('takes lazy url, headers and connectionParams', () => {
    longPollLink<PlainRouter>({
      url: async () => '/trpc',
      headers: () => ({ authorization: 'Bearer x' }),
      connectionParams: async () => ({ token: 'x' }),
      holdMs: 1_000,
      retry: { initialDelayMs: 10, maxDelayMs: 100 },
    });
  });
});

describe('the one-line swap from the README, without a type argument', () => {
  const t = initTRPC.create({ transformer: superjson });
  const appRouter = t.router({ tick: t.procedure.subscription(async function* () { yield 1; }) });
  type AppRouter = typeof appRouter;

  it('infers the router from createTRPCClient, so the transformer rule still applies', () => {
    createTRPCClient<AppRouter>({
      links: [
        splitLink({
          condition: (op) => op.type === 'subscription',
          true: longPollLink({ url: '/api/trpc', transformer: superjson }),
          false: httpBatchLink({ url: '/api/trpc', transformer: superjson }),
        }),
      ],
    });
    createTRPCClient<AppRouter>({
      links: [
        splitLink({
          condition: (op) => op.type === 'subscription',
          // @ts-expect-error the router has a transformer, so the link needs it too
          true: longPollLink({ url: '/api/trpc' }),
          false: httpBatchLink({ url: '/api/trpc', transformer: superjson }),
        }),
      ],
    });
  });
});
