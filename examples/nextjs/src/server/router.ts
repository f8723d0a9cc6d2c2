import { initTRPC } from '@trpc/server';
import superjson from 'superjson';
import { z } from 'zod';
import { store } from './store';

const t = initTRPC.create({ transformer: superjson });

export const appRouter = t.router({
  send: t.procedure
    .input(z.object({ author: z.string().trim().min(1).max(40), text: z.string().trim().min(1).max(500) }))
    .mutation(({ input }) => store.send(input.author, input.text)),

  onMessage: t.procedure
    .input(z.object({ lastEventId: z.string().nullish() }))
    .subscription(({ input, signal }) => store.follow(input.lastEventId, signal)),

  /** How many `onMessage` procedures run on the server: the tests watch an unsubscribe end one. */
  subscriptions: t.procedure.query(() => store.counts()),
});

export type AppRouter = typeof appRouter;
