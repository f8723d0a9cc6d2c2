import { initTRPC } from '@trpc/server';
import type { EventLog } from '@trpc-longpoll/server';
import superjson from 'superjson';
import { z } from 'zod';

export interface ChatMessage {
  author: string;
  text: string;
  /** The instance that stored it, to show that both instances publish. */
  via: string;
}

/** One topic per room; the key's template type types every room at once. */
export type ChatTopics = { [K: `room:${string}`]: ChatMessage };

export function createChatRouter(log: EventLog<ChatTopics>, instance: string) {
  const t = initTRPC.create({ transformer: superjson });
  const room = z.object({ room: z.string().min(1) });
  return t.router({
    /** Where a new reader starts: pass it as `lastEventId`, so no event slips between loading and subscribing. */
    head: t.procedure.input(room).query(({ input }) => log.head(`room:${input.room}`)),
    send: t.procedure
      .input(room.extend({ author: z.string(), text: z.string() }))
      .mutation(async ({ input }) => ({
        id: await log.publish(`room:${input.room}`, { author: input.author, text: input.text, via: instance }),
        via: instance,
      })),
    onMessage: t.procedure
      .input(room.extend({ lastEventId: z.string().nullish() }))
      .subscription(async function* ({ input, signal }) {
        yield* log.subscribe(`room:${input.room}`, { lastEventId: input.lastEventId, signal });
      }),
  });
}

export type ChatRouter = ReturnType<typeof createChatRouter>;
