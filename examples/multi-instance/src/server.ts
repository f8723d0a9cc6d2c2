/**
 * One instance of the chat service, run as its own process by `main.ts`.
 * Every instance serves every client: all state that matters is in Redis.
 * Environment: REDIS_URL, LOG_PREFIX, INSTANCE. Prints `{"listening":url}` when ready.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { createRedisEventLog } from '@trpc-longpoll/redis';
import { createLongPollNodeHandler } from '@trpc-longpoll/server';
import { createChatRouter, type ChatTopics } from './router';

const instance = process.env.INSTANCE ?? `pid-${process.pid}`;
const log = createRedisEventLog<ChatTopics>({
  redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  prefix: process.env.LOG_PREFIX ?? 'chat:',
  // Size retention to the longest absence a client should survive without a reload (see docs/scaling.md).
  retention: { maxLen: 1_000 },
});
const router = createChatRouter(log, instance);
const longPoll = createLongPollNodeHandler({ router });
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
