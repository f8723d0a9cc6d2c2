import { initTRPC } from '@trpc/server';
import type { EventLog } from '@trpc-longpoll/server';
import superjson from 'superjson';
import { z } from 'zod';

/** The soak's API: one tracked subscription per topic of the shared event log. */
export function createChaosRouter(log: EventLog<Record<string, { n: number }>>) {
  const t = initTRPC.create({ transformer: superjson });
  return t.router({
    events: t.procedure
      .input(z.object({ topic: z.string(), lastEventId: z.string().nullish() }))
      .subscription(async function* ({ input, signal }) {
        yield* log.subscribe(input.topic, { lastEventId: input.lastEventId, signal });
      }),
  });
}

export type ChaosRouter = ReturnType<typeof createChaosRouter>;
