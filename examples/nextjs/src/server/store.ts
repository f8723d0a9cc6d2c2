import { randomUUID } from 'node:crypto';
import { createMemoryEventLog } from '@trpc-longpoll/server';
import type { ChatMessage } from '../shared/chat';

type Topics = { chat: ChatMessage };

function createMessageStore() {
  const log = createMemoryEventLog<Topics>();
  let running = 0;
  let started = 0;
  return {
    async send(author: string, text: string): Promise<ChatMessage> {
      const message: ChatMessage = { id: randomUUID(), author, text, at: new Date() };
      await log.publish('chat', message);
      return message;
    },

    /** Messages after `lastEventId` (from now on, without one). Counted while running, so a test sees an unsubscribe stop it. */
    async *follow(lastEventId: string | null | undefined, signal: AbortSignal | undefined) {
      running++;
      started++;
      try {
        // Tracked events: after an interruption, the link's next poll resumes from its cursor.
        yield* log.subscribe('chat', { lastEventId: lastEventId ?? null, signal });
      } finally {
        running--;
      }
    },

    /** Subscriptions running now, and started since the server did. */
    counts: () => ({ running, started }),
  };
}

/**
 * One store per bundle: Next.js builds the App Router route and the Pages
 * Router API route separately, so each endpoint has its own messages. (Not
 * shared through `globalThis`: the two bundles load separate copies of
 * `@trpc/server`, and a `tracked()` event made with one copy is not
 * recognised by the other. State shared across routes belongs in a shared
 * event log, such as `@trpc-longpoll/redis`.)
 */
export const store = createMessageStore();
