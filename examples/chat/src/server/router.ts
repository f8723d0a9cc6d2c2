import { initTRPC } from '@trpc/server';
import superjson from 'superjson';
import { z } from 'zod';
import { ROOMS } from '../shared/chat';
import type { MessageStore } from './messages';

const t = initTRPC.create({ transformer: superjson });

const room = z.enum(ROOMS);

export function createChatRouter(store: MessageStore) {
  return t.router({
    send: t.procedure
      .input(z.object({ room, author: z.string().trim().min(1).max(40), text: z.string().trim().min(1).max(500) }))
      .mutation(({ input }) => store.send(input.room, input.author, input.text)),

    /** Tracked, so a reconnecting reader (SSE or long-poll) resumes where it left off. */
    onMessage: t.procedure
      .input(z.object({ room, lastEventId: z.string().nullish() }))
      .subscription(({ input, signal }) => store.follow(input.room, input.lastEventId, signal)),
  });
}

export type ChatRouter = ReturnType<typeof createChatRouter>;
