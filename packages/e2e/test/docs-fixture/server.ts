/**
 * The `./server` that TypeScript blocks in the docs import: the app a reader
 * already has. docs.test.ts copies it beside the blocks of every document
 * that does not define its own `title="server.ts"` block.
 */
import { initTRPC, TRPCError } from '@trpc/server';
import type { TRPCRequestInfo } from '@trpc/server/http';
import { createMemoryEventLog } from '@trpc-longpoll/server';
import superjson from 'superjson';
import { z } from 'zod';

export type Message = { author: string; text: string; sentAt: Date };
export type Context = { user: string | null };

/** Works with every adapter: each passes at least `info`. */
export function createContext({ info }: { info: TRPCRequestInfo }): Context {
  return { user: info.connectionParams?.token ?? null };
}

const t = initTRPC.context<Context>().create({ transformer: superjson });
export const log = createMemoryEventLog<{ [room: `room:${string}`]: Message }>();

export const appRouter = t.router({
  hello: t.procedure.query(() => 'world'),
  chat: t.router({
    send: t.procedure.input(z.object({ room: z.string().default('lobby'), text: z.string() })).mutation(({ ctx, input }) => {
      if (!ctx.user) throw new TRPCError({ code: 'UNAUTHORIZED' });
      return log.publish(`room:${input.room}`, { author: ctx.user, text: input.text, sentAt: new Date() });
    }),
    onMessage: t.procedure
      .input(z.object({ room: z.string().default('lobby'), lastEventId: z.string().nullish() }))
      .subscription(async function* ({ input, signal }) {
        yield* log.subscribe(`room:${input.room}`, { lastEventId: input.lastEventId, signal });
      }),
  }),
});

export type AppRouter = typeof appRouter;
