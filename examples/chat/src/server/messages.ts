import { randomUUID } from 'node:crypto';
import { tracked } from '@trpc/server';
import { createMemoryEventLog, type EventLog } from '@trpc-longpoll/server';
import type { ChatMessage, Room } from '../shared/chat';

/** How many earlier messages a newcomer to a room sees. */
const BACKLOG = 50;

type Topics = { [K in `room:${Room}`]: ChatMessage };

/**
 * The chat's messages: the library's in-memory event log carries them (ids,
 * replay after `lastEventId`, typed `gone`/`reset` errors), so the example
 * needs no service. The log replays only after a cursor, so the store also
 * keeps each room's recent messages with their ids for newcomers.
 */
export function createMessageStore(log: EventLog<Topics> = createMemoryEventLog<Topics>()) {
  const recent = new Map<Room, { id: string; message: ChatMessage }[]>();
  let following = 0;

  return {
    async send(room: Room, author: string, text: string): Promise<ChatMessage> {
      const message: ChatMessage = { id: randomUUID(), room, author, text, at: new Date() };
      const id = await log.publish(`room:${room}`, message);
      // The in-memory log appends at once and settles publishes in call order, so this is the log's order.
      recent.set(room, [...(recent.get(room) ?? []), { id, message }].slice(-BACKLOG));
      return message;
    },

    /** A room's messages after `lastEventId` (a newcomer: its recent backlog), then each new one. */
    async *follow(room: Room, lastEventId: string | null | undefined, signal: AbortSignal | undefined) {
      following++;
      try {
        if (lastEventId) {
          yield* log.subscribe(`room:${room}`, { lastEventId, signal });
          return;
        }
        // The backlog ends at a cursor the log resumes from, so nothing sent meanwhile is lost.
        const backlog = [...(recent.get(room) ?? [])];
        for (const { id, message } of backlog) yield tracked(id, message);
        yield* log.subscribe(`room:${room}`, { lastEventId: backlog.at(-1)?.id ?? null, signal });
      } finally {
        following--;
      }
    },

    /** Subscriptions running right now (the browser test watches closed tabs' ones end). */
    following: () => following,

    close: () => log.close(),
  };
}

export type MessageStore = ReturnType<typeof createMessageStore>;
