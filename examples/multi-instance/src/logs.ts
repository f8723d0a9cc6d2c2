/**
 * The two shared event logs the example can run on, chosen with
 * `--log redis|postgres` or `EVENT_LOG` (default redis): how to reach each,
 * make the log, read what it stored (to check the clients against it), and
 * remove the example's data afterwards.
 */
import { createPostgresEventLog } from '@trpc-longpoll/postgres';
import { createRedisEventLog } from '@trpc-longpoll/redis';
import type { EventLog } from '@trpc-longpoll/server';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { ChatTopics } from './router';

export type LogKind = 'redis' | 'postgres';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** `--log <kind>` on the command line, else EVENT_LOG, else redis. */
export function chosenLog(argv = process.argv): LogKind {
  const flag = argv.indexOf('--log');
  const kind = flag >= 0 ? argv[flag + 1] : (process.env.EVENT_LOG ?? 'redis');
  if (kind !== 'redis' && kind !== 'postgres') throw new TypeError(`--log / EVENT_LOG must be redis or postgres; got ${kind}`);
  return kind;
}

export interface LogBackend {
  /** Where the data lives, for messages. */
  where: string;
  /** A prefix (Redis) or schema (PostgreSQL) of this run only. */
  namespace: string;
  /** Null when reachable, else what to tell the user. */
  check(): Promise<string | null>;
  create(): EventLog<ChatTopics>;
  /** The ids the log holds for a topic, in its order: what every client must have received. */
  storedIds(topic: string): Promise<string[]>;
  cleanup(): Promise<void>;
}

function redisBackend(namespace: string): LogBackend {
  const admin = () => {
    const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    redis.on('error', () => {});
    return redis;
  };
  const using = async <T>(body: (redis: Redis) => Promise<T>) => {
    const redis = admin();
    try {
      await redis.connect();
      return await body(redis);
    } finally {
      redis.disconnect();
    }
  };
  return {
    where: `Redis at ${REDIS_URL}`,
    namespace,
    check: () =>
      using((redis) => redis.ping()).then(
        () => null,
        () => `No Redis at ${REDIS_URL}. Start one (e.g. \`redis-server\` or \`docker run -p 6379:6379 redis:7\`) or set REDIS_URL.`,
      ),
    // Size retention to the longest absence a client should survive without a reload (see docs/scaling.md).
    create: () => createRedisEventLog<ChatTopics>({ redis: REDIS_URL, prefix: namespace, retention: { maxLen: 1_000 } }),
    storedIds: (topic) =>
      using(async (redis) => {
        const epoch = await redis.hget(`${namespace}{${topic}}:meta`, 'epoch');
        return (await redis.xrange(`${namespace}{${topic}}:events`, '-', '+')).map(([id]) => `${epoch}:${id}`);
      }),
    cleanup: () =>
      using(async (redis) => {
        // SCAN, not KEYS: the example may run against a Redis that holds other data.
        for await (const keys of redis.scanStream({ match: `${namespace}*` }) as AsyncIterable<string[]>) {
          if (keys.length > 0) await redis.del(...keys);
        }
      }),
  };
}

function postgresBackend(schema: string): LogBackend {
  const using = async <T>(body: (client: pg.Client) => Promise<T>) => {
    const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      return await body(client);
    } finally {
      await client.end().catch(() => {});
    }
  };
  return {
    where: `PostgreSQL at ${DATABASE_URL}`,
    namespace: schema,
    check: () =>
      using((client) => client.query('SELECT 1')).then(
        () => null,
        () => `No PostgreSQL at ${DATABASE_URL}. Start one (e.g. \`docker run -e POSTGRES_HOST_AUTH_METHOD=trust -p 5432:5432 postgres:17\`) or set DATABASE_URL.`,
      ),
    create: () => createPostgresEventLog<ChatTopics>({ pg: DATABASE_URL, schema, retention: { maxEvents: 1_000 } }),
    storedIds: (topic) =>
      using(async (client) => {
        const { rows } = await client.query<{ id: string }>(
          `SELECT m.epoch || ':' || e.n AS id FROM ${schema}.events e, ${schema}.meta m WHERE e.topic = $1 ORDER BY e.n`,
          [topic],
        );
        return rows.map((row) => row.id);
      }),
    cleanup: () => using((client) => client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)).then(() => {}),
  };
}

/** The backend of `kind` for the namespace (prefix or schema) of one run. */
export function logBackend(kind: LogKind, namespace: string): LogBackend {
  return kind === 'postgres' ? postgresBackend(namespace) : redisBackend(namespace);
}

/** A namespace of this run only, valid as a Redis prefix and as a PostgreSQL schema name. */
export function runNamespace(kind: LogKind, pid = process.pid): string {
  return kind === 'postgres' ? `example_multi_instance_${pid}` : `example-multi-instance:${pid}:`;
}
