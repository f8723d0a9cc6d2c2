import { createPostgresEventLog } from '@trpc-longpoll/postgres';
import { createRedisEventLog } from '@trpc-longpoll/redis';
import { createMemoryEventLog, type EventLog } from '@trpc-longpoll/server';
import { createUpstashEventLog, type UpstashEventLog } from '@trpc-longpoll/upstash';
import { Redis } from 'ioredis';
import pg from 'pg';
// The Upstash log talks to this loopback stand-in for Upstash's REST API, which runs its commands on the local Redis.
import { startUpstashRest } from '../../../upstash/test/fixture/upstashRest';
import type { BenchEvent, LogKind } from '../shared';

/**
 * The log scenarios (7a–7c): the same events through each event log, served
 * by the long-poll handler, counting the round trips the log makes to its
 * store. Counting wraps the drivers' one send path (ioredis'
 * `sendCommand`, pg's `Client#query`), so it sees every command of every
 * connection of this process, the shared reader and the LISTEN connection included.
 */
export interface LogSource {
  publish(topic: string, data: BenchEvent): Promise<unknown>;
  /** Yields `tracked()` envelopes from the topic's head, fixed before the subscription counts as ready. */
  subscribe(topic: string, signal: AbortSignal | undefined): AsyncIterable<readonly [string, BenchEvent, ...unknown[]]>;
  /** Subscriptions reading the log right now, by topic. */
  readonly subscribers: Record<string, number>;
  /** Round trips to the log's store so far (0 for the memory log). */
  queries(): number;
  close(): Promise<void>;
}

export type LogAvailability = { status: 'ok'; source: LogSource } | { status: 'unavailable'; note: string };

let redisCommands = 0;
let pgQueries = 0;

function countRoundTrips(): void {
  const redisProto = Redis.prototype as unknown as { sendCommand: (...args: unknown[]) => unknown; counted?: true };
  if (!redisProto.counted) {
    const send = redisProto.sendCommand;
    redisProto.sendCommand = function (this: unknown, ...args: unknown[]) {
      redisCommands++;
      return send.apply(this, args);
    };
    redisProto.counted = true;
  }
  const pgProto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown; counted?: true };
  if (!pgProto.counted) {
    const query = pgProto.query;
    pgProto.query = function (this: unknown, ...args: unknown[]) {
      pgQueries++;
      return query.apply(this, args);
    };
    pgProto.counted = true;
  }
}

/** Reachable at all? Connects once, without retrying. */
async function probe(kind: LogKind): Promise<string | null> {
  if (kind === 'memory') return null;
  if (kind === 'redis' || kind === 'upstash') {
    const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    const redis = new Redis(url, { lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 1, retryStrategy: () => null });
    redis.on('error', () => {});
    try {
      await redis.connect();
      await redis.ping();
      return null;
    } catch (cause) {
      return `no Redis at ${url} (${(cause as Error).message})`;
    } finally {
      redis.disconnect();
    }
  }
  const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return null;
  } catch (cause) {
    return `no PostgreSQL at ${url} (${(cause as Error).message})`;
  } finally {
    await client.end().catch(() => {});
  }
}

/** The log of `kind`, in a namespace of this process only (dropped on close). */
function createLog(kind: LogKind): { log: EventLog<Record<string, BenchEvent>>; drop: () => Promise<void> } {
  if (kind === 'memory') return { log: createMemoryEventLog({ maxEventsPerTopic: 10_000 }), drop: async () => {} };
  if (kind === 'redis') {
    const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    const prefix = `trpc-longpoll-bench-log:${process.pid}:`;
    return {
      log: createRedisEventLog({ redis: url, prefix }),
      drop: async () => {
        const redis = new Redis(url);
        const keys = await redis.keys(`${prefix}*`).catch(() => [] as string[]);
        if (keys.length > 0) await redis.del(...keys).catch(() => {});
        redis.disconnect();
      },
    };
  }
  const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `tlp_bench_${process.pid}`;
  return {
    log: createPostgresEventLog({ pg: url, schema }),
    drop: async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
      await client.end();
    },
  };
}

/** The Upstash log and its REST fixture; round trips are the log's HTTP requests (the fixture's Redis commands are not the log's). */
async function createUpstashLog(): Promise<{ log: UpstashEventLog<Record<string, BenchEvent>>; drop: () => Promise<void> }> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const rest = await startUpstashRest({ redis: url });
  const prefix = `trpc-longpoll-bench-upstash:${process.pid}:`;
  return {
    log: createUpstashEventLog({ redis: { url: rest.url, token: rest.token }, prefix }),
    drop: async () => {
      await rest.close();
      const redis = new Redis(url);
      const keys = await redis.keys(`${prefix}*`).catch(() => [] as string[]);
      if (keys.length > 0) await redis.del(...keys).catch(() => {});
      redis.disconnect();
    },
  };
}

export async function openLogSource(kind: LogKind): Promise<LogAvailability> {
  const problem = await probe(kind);
  if (problem) return { status: 'unavailable', note: problem };
  countRoundTrips();
  const upstash = kind === 'upstash' ? await createUpstashLog() : null;
  const { log, drop } = upstash ?? createLog(kind);
  const subscribers: Record<string, number> = {};
  return {
    status: 'ok',
    source: {
      publish: (topic, data) => log.publish(topic, data),
      async *subscribe(topic, signal) {
        const lastEventId = await log.head(topic);
        subscribers[topic] = (subscribers[topic] ?? 0) + 1;
        try {
          yield* log.subscribe(topic, { lastEventId, signal }) as AsyncIterable<readonly [string, BenchEvent, ...unknown[]]>;
        } finally {
          if (--subscribers[topic]! === 0) delete subscribers[topic];
        }
      },
      subscribers,
      queries: () => (upstash ? upstash.log.requests() : kind === 'redis' ? redisCommands : kind === 'postgres' ? pgQueries : 0),
      async close() {
        await log.close();
        await drop();
      },
    },
  };
}
