/**
 * One server instance of the chaos soak, run as its own process so it can be
 * killed with SIGKILL. Every instance reads the same Redis event log.
 *
 * Environment: PORT, REDIS_URL, CHAOS_PREFIX (Redis key prefix), HOLD_MS.
 * Prints `ready <port>` once it listens.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRedisEventLog } from '@trpc-longpoll/redis';
import { createLongPollNodeHandler } from '@trpc-longpoll/server';
import { createChaosRouter } from './router';

const log = createRedisEventLog<Record<string, { n: number }>>({
  redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  prefix: process.env.CHAOS_PREFIX ?? 'trpc-longpoll-chaos:',
  // Small, so a subscription resumed on this instance finds its place fast.
  blockMs: 1_000,
});
const longPoll = createLongPollNodeHandler({
  router: createChaosRouter(log),
  createContext: () => ({}),
  holdMs: Number(process.env.HOLD_MS ?? 2_000),
});
const server = createServer((req, res) => longPoll(req, res));
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`ready ${(server.address() as AddressInfo).port}`);
});

process.once('SIGTERM', () => {
  void longPoll
    .close()
    .then(() => log.close())
    .finally(() => {
      server.close();
      server.closeAllConnections();
      process.exit(0);
    });
});
