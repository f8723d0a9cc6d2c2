/**
 * One instance of the chat service, run as its own process by `main.ts`.
 * Every instance serves every client: all state that matters is in the shared log.
 * Environment: EVENT_LOG (redis or postgres), LOG_NAMESPACE, INSTANCE, and
 * REDIS_URL or DATABASE_URL. Prints `{"listening":url}` when ready.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { createLongPollNodeHandler } from '@trpc-longpoll/server';
import { chosenLog, logBackend, runNamespace } from './logs';
import { createChatRouter } from './router';

const instance = process.env.INSTANCE ?? `pid-${process.pid}`;
const kind = chosenLog();
const log = logBackend(kind, process.env.LOG_NAMESPACE ?? runNamespace(kind)).create();
const router = createChatRouter(log, instance);
// The log's channel tells the other instances when a client moves or leaves, so they stop its procedures at once.
const longPoll = createLongPollNodeHandler({ router, cluster: log.cluster });
const trpc = createHTTPHandler({ router });
const server = createServer((req, res) => longPoll(req, res, () => trpc(req, res)));

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ listening: `http://127.0.0.1:${port}` })}\n`);
});

// A graceful stop answers held polls at once; the clients re-poll through the balancer to another instance.
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
