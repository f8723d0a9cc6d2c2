import { EventEmitter, on } from 'node:events';
import { initTRPC } from '@trpc/server';
import { createMemoryEventLog } from '@trpc-longpoll/server';
import superjson from 'superjson';
import { z } from 'zod';

export interface ChatMessage {
  author: string;
  text: string;
  /** A `Date`, not a string: superjson carries it through the poll. */
  sentAt: Date;
}

export interface Quote {
  symbol: string;
  price: number;
  at: Date;
}

export interface Context {
  /** Who is calling; a real app would read a session cookie or a token. */
  user: string;
}

/** The demo's API: a resumable chat room and a live price ticker. */
export function createAppRouter() {
  const t = initTRPC.context<Context>().create({ transformer: superjson });
  // Kept in this process; every event gets an id a reader can resume after.
  const log = createMemoryEventLog<{ chat: ChatMessage }>();
  const quotes = new EventEmitter();
  quotes.setMaxListeners(0);
  /** Subscription procedures running on the server right now. */
  let running = 0;

  const router = t.router({
    chat: t.router({
      send: t.procedure
        .input(z.object({ text: z.string().min(1) }))
        .mutation(({ input, ctx }) => log.publish('chat', { author: ctx.user, text: input.text, sentAt: new Date() })),
      /**
       * Tracked: each message carries its id, the client remembers the last
       * one, and a reconnect (or another server instance) resumes right after it.
       */
      onMessage: t.procedure
        .input(z.object({ lastEventId: z.string().nullish() }).optional())
        .subscription(async function* ({ input, signal }) {
          running++;
          try {
            // Yields `tracked(id, message)`: replays what came after `lastEventId`, then follows live.
            yield* log.subscribe('chat', { lastEventId: input?.lastEventId, signal });
          } finally {
            running--;
          }
        }),
    }),
    ticker: t.router({
      publish: t.procedure
        .input(z.object({ symbol: z.string(), price: z.number() }))
        .mutation(({ input }) => {
          const quote: Quote = { ...input, at: new Date() };
          quotes.emit('quote', quote);
          return quote;
        }),
      /** Untracked: live values only, nothing to replay. */
      onQuote: t.procedure
        .input(z.object({ symbols: z.array(z.string()).min(1) }))
        .subscription(async function* ({ input, signal }) {
          running++;
          try {
            for await (const [quote] of on(quotes, 'quote', { signal }) as AsyncIterable<[Quote]>) {
              if (input.symbols.includes(quote.symbol)) yield quote;
            }
          } finally {
            running--;
          }
        }),
    }),
  });

  return { router, runningSubscriptions: () => running, close: () => log.close() };
}

export type AppRouter = ReturnType<typeof createAppRouter>['router'];
