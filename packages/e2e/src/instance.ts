/**
 * One server instance as its own process, for the multi-instance tests:
 * `node --import tsx packages/e2e/src/instance.ts` from the repository root
 * (tsx maps the workspace packages to their sources through tsconfig paths).
 *
 * Environment: REDIS_URL or REDIS_PATH (Unix socket), LOG_PREFIX, INSTANCE,
 * and optionally MAX_LEN, RESET_GRACE_MS, RECHECK_MS, HOLD_MS, NO_CLUSTER=1.
 * LONGPOLL_LOG=postgres: the PostgreSQL log instead, in DATABASE_URL and schema LOG_SCHEMA.
 * Prints one line `{"listening":"http://127.0.0.1:<port>"}` when ready.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { createPostgresEventLog } from '@trpc-longpoll/postgres';
import { createRedisEventLog } from '@trpc-longpoll/redis';
import { createLongPollNodeHandler } from '@trpc-longpoll/server';
import { createRoomRouter, type RoomTopics } from './instanceRouter';

const env = process.env;
const number = (name: string) => (env[name] ? Number(env[name]) : undefined);

const log =
  env.LONGPOLL_LOG === 'postgres'
    ? createPostgresEventLog<RoomTopics>({
        pg: env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
        schema: env.LOG_SCHEMA,
        retention: { maxEvents: number('MAX_LEN') ?? 10_000 },
        resetGraceMs: number('RESET_GRACE_MS'),
        recheckMs: number('RECHECK_MS'),
      })
    : createRedisEventLog<RoomTopics>({
        redis: env.REDIS_PATH ? { path: env.REDIS_PATH } : (env.REDIS_URL ?? 'redis://127.0.0.1:6379'),
        prefix: env.LOG_PREFIX ?? 'trpc-longpoll-e2e:',
        retention: { maxLen: number('MAX_LEN') ?? 10_000, exact: true },
        resetGraceMs: number('RESET_GRACE_MS'),
        recheckMs: number('RECHECK_MS'),
      });
const router = createRoomRouter(log, env.INSTANCE ?? `pid-${process.pid}`, () => longPoll.stats());
// NO_CLUSTER=1: the instances do not tell each other where clients went (cleanup at idle expiry only).
const longPoll = createLongPollNodeHandler({ router, holdMs: number('HOLD_MS'), cluster: env.NO_CLUSTER === '1' ? undefined : log.cluster });
const trpc = createHTTPHandler({ router });
const server = createServer((req, res) => longPoll(req, res, () => trpc(req, res)));

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ listening: `http://127.0.0.1:${port}` })}\n`);
});

const shutdown = async () => {
  await longPoll.close();
  await log.close();
  server.close();
  server.closeAllConnections();
  // A watched stdin would keep the process alive.
  process.stdin.destroy();
};
process.once('SIGTERM', () => void shutdown());
// Started by a parent with EXIT_WITH_STDIN=1: its end (the parent died, even by SIGKILL) ends this process too.
if (process.env.EXIT_WITH_STDIN === '1') {
  process.stdin.once('end', () => void shutdown().finally(() => process.exit(0)));
  process.stdin.resume();
}
