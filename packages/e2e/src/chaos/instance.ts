/**
 * One server instance of the chaos soak, run as its own process so it can be
 * killed with SIGKILL. Every instance reads the same event log.
 *
 * Environment: PORT, CHAOS_LOG (redis or postgres), CHAOS_LOG_URL,
 * CHAOS_NAMESPACE (Redis key prefix or PostgreSQL schema), HOLD_MS.
 * Prints `ready <port>` once it listens.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLongPollNodeHandler } from '@trpc-longpoll/server';
import { createChaosLog, type ChaosLogKind } from './logChoice';
import { createChaosRouter } from './router';

const log = createChaosLog({
  kind: (process.env.CHAOS_LOG ?? 'redis') as ChaosLogKind,
  url: process.env.CHAOS_LOG_URL ?? 'redis://127.0.0.1:6379',
  namespace: process.env.CHAOS_NAMESPACE ?? 'trpc-longpoll-chaos:',
});
const longPoll = createLongPollNodeHandler({
  router: createChaosRouter(log),
  createContext: () => ({}),
  holdMs: Number(process.env.HOLD_MS ?? 2_000),
  cluster: log.cluster,
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
