import { EventEmitter, on } from 'node:events';
import { TRPCError, initTRPC, tracked } from '@trpc/server';
import superjson from 'superjson';
import { z } from 'zod';
import { createFeed } from './feed';

export interface TestContext {
  user: string | null;
}

/** What `post.onAdd` delivers: a post with its event id. */
export interface TestPost {
  id: string;
  data: { text: string; at: Date };
}

/** Everything a test can observe about the server side of the router. */
export function createTestRouter() {
  const t = initTRPC.context<TestContext>().create({
    transformer: superjson,
    errorFormatter: ({ shape, error }) => ({
      ...shape,
      data: { ...shape.data, reason: error.cause instanceof Error ? error.cause.message : null },
    }),
  });
  const feed = createFeed<{ text: string; at: Date }>();
  const ticker = new EventEmitter();
  ticker.setMaxListeners(0);
  const finallies: string[] = [];
  const started: string[] = [];

  const authed = t.procedure.use(({ ctx, next }) => {
    if (!ctx.user) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Sign in first' });
    return next({ ctx: { user: ctx.user } });
  });

  const router = t.router({
    hello: t.procedure.query(() => 'world'),
    post: t.router({
      add: t.procedure.input(z.object({ text: z.string() })).mutation(({ input }) => feed.publish({ text: input.text, at: new Date() })),
      /** Tracked: resumable from any instance through `lastEventId`. */
      onAdd: t.procedure
        .input(z.object({ lastEventId: z.string().nullish() }).optional())
        .subscription(async function* ({ input, signal }) {
          started.push('onAdd');
          try {
            yield* feed.subscribe(input?.lastEventId, signal);
          } finally {
            finallies.push('onAdd');
          }
        }),
    }),
    /** Untracked: yields whatever the ticker emits. */
    ticks: t.procedure.input(z.object({ room: z.string() })).subscription(async function* ({ input, signal }) {
      started.push(`ticks:${input.room}`);
      try {
        for await (const [value] of on(ticker, input.room, { signal })) {
          yield value as number;
        }
      } finally {
        finallies.push(`ticks:${input.room}`);
      }
    }),
    /** Ends by itself after three events. */
    countdown: t.procedure.input(z.object({ from: z.number().int().min(1) })).subscription(async function* ({ input }) {
      for (let i = input.from; i > input.from - 3; i--) yield i;
    }),
    /** Every superjson type. */
    rich: t.procedure.subscription(async function* () {
      yield {
        date: new Date('2026-01-02T03:04:05.000Z'),
        map: new Map([['a', 1]]),
        set: new Set(['x', 'y']),
        big: 12345678901234567890n,
        undef: undefined as string | undefined,
      };
    }),
    /** Throws a retryable error after one event, then succeeds on the next run. */
    flaky: t.procedure.subscription(async function* ({ signal }) {
      started.push('flaky');
      yield tracked(String(started.filter((s) => s === 'flaky').length), 'ok');
      if (started.filter((s) => s === 'flaky').length === 1) {
        throw new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: 'transient' });
      }
      await new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }));
    }),
    forbidden: t.procedure.subscription(async function* () {
      throw new TRPCError({ code: 'FORBIDDEN', message: 'No access', cause: new Error('policy 7') });
      yield 1;
    }),
    me: authed.subscription(async function* ({ ctx }) {
      yield ctx.user;
    }),
  });

  return { router, feed, ticker, finallies, started, t };
}

export type TestRouter = ReturnType<typeof createTestRouter>['router'];
