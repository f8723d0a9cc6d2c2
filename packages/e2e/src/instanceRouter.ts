import { initTRPC } from '@trpc/server';
import { isBookmark, type EventLog } from '@trpc-longpoll/server';
import superjson from 'superjson';
import { z } from 'zod';

export interface RoomEvent {
  text: string;
  /** Who published it and through which instance, so a test can tell the instances' events apart. */
  publisher: string;
  via: string;
}

export type RoomTopics = { [K: `room:${string}`]: RoomEvent };

/**
 * The router every instance of the multi-instance tests serves: rooms backed by a shared event log.
 * `stats`, when given, is the instance's long-poll handler's, for tests to count its runs.
 */
export function createRoomRouter(log: EventLog<RoomTopics>, instance: string, stats: () => unknown = () => null) {
  const t = initTRPC.create({ transformer: superjson });
  return t.router({
    instance: t.procedure.query(() => instance),
    stats: t.procedure.query(() => stats() as { runs: { total: number }; counters: { moves: { announced: number; dropped: number } } } | null),
    /** Where a new subscriber starts; passed as `lastEventId`, it holds whichever instance serves the polls. */
    head: t.procedure.input(z.object({ room: z.string() })).query(({ input }) => log.head(`room:${input.room}`)),
    publish: t.procedure
      .input(z.object({ room: z.string(), text: z.string(), publisher: z.string() }))
      .mutation(({ input }) => log.publish(`room:${input.room}`, { text: input.text, publisher: input.publisher, via: instance })),
    onRoom: t.procedure
      .input(z.object({ room: z.string(), lastEventId: z.string().nullish() }))
      .subscription(async function* ({ input, signal }) {
        yield* log.subscribe(`room:${input.room}`, { lastEventId: input.lastEventId, signal });
      }),
    /** The same events untracked: only the instance running it can deliver them. */
    onRoomUntracked: t.procedure.input(z.object({ room: z.string() })).subscription(async function* ({ input, signal }) {
      for await (const [, event] of log.subscribe(`room:${input.room}`, { signal })) if (!isBookmark(event)) yield event;
    }),
  });
}

export type RoomRouter = ReturnType<typeof createRoomRouter>;
