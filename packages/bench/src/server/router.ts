import { initTRPC, tracked } from '@trpc/server';
import superjson from 'superjson';
import { SUPERJSON } from '../shared';
import type { Hub } from './hub';
import type { LogSource } from './logSource';
import type { RedisSource } from './redisSource';

interface TopicInput {
  topic: string;
}

/** A parser tRPC accepts; kept trivial so no validation library sits on the measured path. */
function topicInput(raw: unknown): TopicInput {
  const topic = (raw as Partial<TopicInput> | null)?.topic;
  if (typeof topic !== 'string') throw new Error('`topic` must be a string');
  return { topic };
}

/**
 * The one router every tRPC transport serves. Plain JSON by default, so the transports are what
 * differs; with `--superjson`, superjson, as most tRPC apps run.
 */
export function createBenchRouter(hub: Hub, redis: () => RedisSource | null, log: () => LogSource | null = () => null) {
  const t = SUPERJSON ? initTRPC.create({ transformer: superjson }) : initTRPC.create();
  return t.router({
    /** Untracked events from the in-process hub. */
    events: t.procedure.input(topicInput).subscription(async function* ({ input, signal }) {
      yield* hub.subscribe(input.topic, signal);
    }),
    /** The same events, tracked (each carries an id the client can resume from). */
    tracked: t.procedure.input(topicInput).subscription(async function* ({ input, signal }) {
      for await (const event of hub.subscribe(input.topic, signal)) yield tracked(String(event.n), event);
    }),
    /** Events through the Redis event log, tracked by the log's ids. */
    redis: t.procedure.input(topicInput).subscription(async function* ({ input, signal }) {
      const source = redis();
      if (!source) throw new Error('The Redis event log is not available in this run');
      for await (const [id, data] of source.subscribe(input.topic, signal)) yield tracked(id, data);
    }),
    /** Log scenarios: events through the event log this server process was started with. */
    log: t.procedure.input(topicInput).subscription(async function* ({ input, signal }) {
      const source = log();
      if (!source) throw new Error('No event log was opened in this run');
      for await (const [id, data] of source.subscribe(input.topic, signal)) yield tracked(id, data);
    }),
  });
}

export type BenchRouter = ReturnType<typeof createBenchRouter>;
