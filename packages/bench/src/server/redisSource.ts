import { createRedisEventLog } from '@trpc-longpoll/redis';
import { Redis } from 'ioredis';
import type { BenchEvent } from '../shared';

/** Scenario 6 reads events through the Redis event log of `@trpc-longpoll/redis`. */
export interface RedisSource {
  publish(topic: string, data: BenchEvent): Promise<unknown>;
  /** Yields `tracked()` envelopes: `[id, data, symbol]`. */
  subscribe(topic: string, signal: AbortSignal | undefined): AsyncIterable<readonly [string, BenchEvent, ...unknown[]]>;
  /** Subscriptions reading the log right now, by topic. */
  readonly subscribers: Record<string, number>;
  close(): Promise<void>;
}

export type RedisAvailability = { status: 'ok'; source: RedisSource } | { status: 'unavailable'; note: string };

/** Connects to `REDIS_URL` (default 127.0.0.1:6379); without a Redis there, scenario 6 is skipped with a notice. */
export async function openRedisSource(): Promise<RedisAvailability> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 1, retryStrategy: () => null });
  // Failures surface through the awaited calls; ioredis would also log each one as an unhandled 'error' event.
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch (cause) {
    redis.disconnect();
    return { status: 'unavailable', note: `no Redis at ${url} (${(cause as Error).message})` };
  }
  // A prefix of its own per process, so runs never read each other's streams.
  const log = createRedisEventLog<Record<string, BenchEvent>>({ redis, prefix: `trpc-longpoll-bench:${process.pid}:` });
  const subscribers: Record<string, number> = {};
  return {
    status: 'ok',
    source: {
      publish: (topic, data) => log.publish(topic, data),
      async *subscribe(topic, signal) {
        // From the head, fixed before the subscription counts as ready: "from now" would only be fixed
        // once the log's reader starts, and events the load generator publishes before that would be missed.
        const lastEventId = await log.head(topic);
        subscribers[topic] = (subscribers[topic] ?? 0) + 1;
        try {
          yield* log.subscribe(topic, { lastEventId, signal }) as AsyncIterable<readonly [string, BenchEvent, ...unknown[]]>;
        } finally {
          if (--subscribers[topic]! === 0) delete subscribers[topic];
        }
      },
      subscribers,
      async close() {
        await log.close();
        // The streams were only for this run.
        const keys = await redis.keys(`trpc-longpoll-bench:${process.pid}:*`).catch(() => [] as string[]);
        if (keys.length > 0) await redis.del(...keys).catch(() => {});
        redis.disconnect();
      },
    },
  };
}
