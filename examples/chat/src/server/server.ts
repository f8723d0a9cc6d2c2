import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { createLongPollNodeHandler } from '@trpc-longpoll/server';
import { TRPC_PATH } from '../shared/chat';
import { createMessageStore } from './messages';
import { createChatRouter } from './router';

/** Serves the page: the built files, or Vite's dev middleware. */
export type PageHandler = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

export interface ChatServerOptions {
  page: PageHandler;
  port?: number;
  host?: string;
}

/**
 * One `node:http` server (HTTP/1.1, as a browser talking to a plain Node
 * server gets) for the page and the API: long-poll polls and every other tRPC
 * call share the `/trpc` endpoint, so the page can switch to tRPC's
 * `httpSubscriptionLink` without any server change.
 */
export async function startChatServer(opts: ChatServerOptions) {
  const store = createMessageStore();
  const router = createChatRouter(store);
  const longPoll = createLongPollNodeHandler({ router, endpoint: TRPC_PATH });
  const trpc = createHTTPHandler({ router, basePath: `${TRPC_PATH}/` });

  const sockets = new Set<Socket>();
  const polls = pollCounter();
  const server = createServer((req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://x');
    // Polls go to the endpoint itself; queries and mutations to `${TRPC_PATH}/<procedure>`.
    if (pathname === TRPC_PATH && req.method === 'POST') polls.track(res);
    if (pathname === TRPC_PATH || pathname.startsWith(`${TRPC_PATH}/`)) {
      longPoll(req, res, () => trpc(req, res));
      return;
    }
    opts.page(req, res, () => {
      res.statusCode = 404;
      res.end();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve);
  });
  const { port, address } = server.address() as AddressInfo;

  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}`,
    store,
    router,
    polls,
    async close(): Promise<void> {
      await longPoll.close();
      await store.close();
      // Held polls and EventSources never end by themselves.
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type ChatServer = Awaited<ReturnType<typeof startChatServer>>;

/** Long-poll requests in flight, and the most seen at once since the last `resetPeak()`: how many connections polls keep busy. */
function pollCounter() {
  let inFlight = 0;
  let peak = 0;
  return {
    track(res: ServerResponse): void {
      inFlight++;
      peak = Math.max(peak, inFlight);
      res.once('close', () => inFlight--);
    },
    inFlight: () => inFlight,
    peak: () => peak,
    resetPeak(): void {
      peak = inFlight;
    },
  };
}
