import { createMemoryEventLog } from '@trpc-longpoll/server';
import { eventLogSuite } from '@trpc-longpoll/e2e';

eventLogSuite('in-memory', {
  create: async ({ maxEvents, resetGraceMs }) => createMemoryEventLog({ maxEventsPerTopic: maxEvents, resetGraceMs }),
  aheadOf: (id) => {
    const colon = id.indexOf(':');
    return `${id.slice(0, colon)}:${Number(id.slice(colon + 1)) + 1}`;
  },
  // The memory log's events live and die with it: forgetting is a restart.
  forget: async (log, { maxEvents, resetGraceMs }) => {
    await log.close();
    return createMemoryEventLog({ maxEventsPerTopic: maxEvents, resetGraceMs });
  },
});
