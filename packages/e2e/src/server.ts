import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AnyTRPCRouter } from '@trpc/server';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { listen } from './listen';
import { createLongPollNodeHandler, type LongPollNodeHandlerOptions } from '@trpc-longpoll/server';

export interface TestServer {
  url: string;
  server: Server;
  longPoll: ReturnType<typeof createLongPollNodeHandler>;
  /** Sockets open right now. */
  openSockets(): number;
  /** Requests seen, by pathname. */
  requests: string[];
  /** Requests received but not yet answered (or abandoned) right now. */
  inFlight(): number;
  /** Statuses of the answers written out, in order. */
  answered: { path: string; status: number }[];
  close(): Promise<void>;
}

/**
 * A real HTTP server on 127.0.0.1 serving the router the way a user would:
 * tRPC's standalone handler for everything, the long-poll handler in front.
 */
export async function startServer<TRouter extends AnyTRPCRouter>(
  opts: LongPollNodeHandlerOptions<TRouter> & { createContext?: (o: { req: IncomingMessage; res: ServerResponse; info: unknown }) => unknown },
): Promise<TestServer> {
  const longPoll = createLongPollNodeHandler(opts as LongPollNodeHandlerOptions<AnyTRPCRouter>);
  const trpc = createHTTPHandler({ router: opts.router, createContext: opts.createContext as never });
  const requests: string[] = [];
  const answered: { path: string; status: number }[] = [];
  let inFlight = 0;
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(path);
    inFlight++;
    res.once('finish', () => answered.push({ path, status: res.statusCode }));
    res.once('close', () => inFlight--);
    longPoll(req, res, () => trpc(req, res));
  });
  const listening = await listen(server);
  return {
    url: listening.url,
    server,
    longPoll,
    requests,
    answered,
    inFlight: () => inFlight,
    openSockets: listening.openSockets,
    async close() {
      await longPoll.close();
      await listening.close();
    },
  };
}
