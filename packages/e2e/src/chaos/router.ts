import { initTRPC } from '@trpc/server';
import { isBookmark, type EventLog } from '@trpc-longpoll/server';
import superjson from 'superjson';
import { z } from 'zod';

/** The soak's API: a tracked subscription per topic of the shared event log, and an untracked one. */
export function createChaosRouter(log: EventLog<Record<string, { n: number }>>) {
  const t = initTRPC.create({ transformer: superjson });
  return t.router({
    events: t.procedure
      .input(z.object({ topic: z.string(), lastEventId: z.string().nullish() }))
      .subscription(async function* ({ input, signal }) {
        yield* log.subscribe(input.topic, { lastEventId: input.lastEventId, signal });
      }),
    /** The same events without ids: only the instance running it can deliver them. */
    untracked: t.procedure.input(z.object({ topic: z.string() })).subscription(async function* ({ input, signal }) {
      for await (const [, event] of log.subscribe(input.topic, { signal })) if (!isBookmark(event)) yield event;
    }),
  });
}

export type ChaosRouter = ReturnType<typeof createChaosRouter>;
