import type { AddressInfo, Socket } from 'node:net';
import { createHTTPServer } from '@trpc/server/adapters/standalone';
import { createLongPollNodeHandler } from '@trpc-longpoll/server';
import type { AppRouter, Context } from './router';

export interface DemoServer {
  /** The tRPC endpoint: queries, mutations and polls all go here. */
  url: string;
  /** Polls answered so far. */
  polls(): number;
  /** Answers held polls, stops every subscription, then closes the HTTP server. */
  close(): Promise<void>;
}

const BASE_PATH = '/trpc';

/**
 * tRPC's standalone server, with the long-poll handler as its `middleware`:
 * a POST to the endpoint itself is a poll, everything else goes on to tRPC.
 */
export async function startServer(router: AppRouter, port = 0): Promise<DemoServer> {
  // The demo has no login; every caller gets a name from a header.
  const createContext = ({ req }: { req: { headers: Record<string, string | string[] | undefined> } }): Context => ({
    user: String(req.headers['x-user'] ?? 'anonymous'),
  });
  const longPoll = createLongPollNodeHandler({ router, createContext, endpoint: BASE_PATH });
  let polls = 0;
  const server = createHTTPServer({
    router,
    createContext,
    basePath: `${BASE_PATH}/`,
    middleware: (req, res, next) => {
      if (longPoll.matches(req)) res.once('finish', () => polls++);
      longPoll(req, res, next);
    },
  });
  // Node's `server.close()` ends idle keep-alive connections, but not ones
  // that never carried a request (fetch may open a spare one); track those.
  const unused = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    unused.add(socket);
    socket.once('close', () => unused.delete(socket));
  });
  server.on('request', (req) => unused.delete(req.socket));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${bound}${BASE_PATH}`,
    polls: () => polls,
    async close() {
      // First the long-poll handler, so held polls are answered rather than cut.
      await longPoll.close();
      // Stops accepting and ends idle connections; requests in flight may finish. Resolves when the last connection is gone.
      const closed = new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
      for (const socket of unused) socket.destroy();
      await closed;
    },
  };
}
