import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AnyTRPCRouter } from '@trpc/server';
import type { NodeHTTPCreateContextFnOptions } from '@trpc/server/adapters/node-http';
import { createLongPollCore, type LongPollStats } from '../core/pipeline';
import { pathnameOf, type CoreResponse } from '../core/http';
import type { LongPollOptions } from '../core/options';
import type { CreateContextOption } from './context';
import { abortOnClose, isPollPath, nodeBody, nodeHeader } from './shared';

type NodeRequest = IncomingMessage & { body?: unknown };

export type LongPollNodeHandlerOptions<
  TRouter extends AnyTRPCRouter,
  TRequest extends NodeRequest = NodeRequest,
  TResponse extends ServerResponse = ServerResponse,
> = LongPollOptions<TRouter, TRequest> &
  CreateContextOption<TRouter, NodeHTTPCreateContextFnOptions<TRequest, TResponse>> & {
    /** The path polls are POSTed to, as the request URL shows it. Default `/` (right for Express's `app.use('/trpc', …)`). */
    endpoint?: string;
  };

export interface LongPollNodeHandler<TRequest, TResponse> {
  /**
   * Answers polls; passes anything else to `next` (or answers 404 without
   * one). Fits `node:http`, tRPC's standalone `middleware` option and Connect-style stacks.
   */
  (req: TRequest, res: TResponse, next?: (err?: unknown) => void): void;
  /** Whether `req` is a poll (a POST to the endpoint itself). Never throws, whatever the request line holds. */
  matches(req: TRequest): boolean;
  close(): Promise<void>;
  /** A cheap snapshot: polls held, runs by path, buffers, budgets and counters since start (see the README's Stats). */
  stats(): LongPollStats;
}

function write(res: ServerResponse, answer: CoreResponse): void {
  if (res.headersSent || res.destroyed) return;
  res.statusCode = answer.status;
  for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
  // A body left unread (too large, too slow) is not drained: the connection goes with it.
  if (answer.close) res.setHeader('connection', 'close');
  res.end(answer.body);
}

/** The long-poll handler for `node:http` servers; `createContext` gets `{ req, res, info }` like tRPC's Node adapters. */
export function createLongPollNodeHandler<
  TRouter extends AnyTRPCRouter,
  TRequest extends NodeRequest = NodeRequest,
  TResponse extends ServerResponse = ServerResponse,
>(opts: LongPollNodeHandlerOptions<TRouter, TRequest, TResponse>): LongPollNodeHandler<TRequest, TResponse> {
  const core = createLongPollCore(opts);
  const endpoint = opts.endpoint ?? '/';
  const createContext = (opts as { createContext?: (o: NodeHTTPCreateContextFnOptions<TRequest, TResponse>) => unknown })
    .createContext;

  const matches = (req: TRequest) => req.method === 'POST' && isPollPath(pathnameOf(req.url ?? '/'), endpoint);

  const handler = (req: TRequest, res: TResponse, next?: (err?: unknown) => void): void => {
    if (!matches(req)) {
      if (next) return next();
      res.statusCode = 404;
      res.end();
      return;
    }
    void core
      .serve({
        method: req.method ?? 'POST',
        url: req.url ?? '/',
        host: nodeHeader(req, 'host'),
        protocol: (req.socket as { encrypted?: boolean } | undefined)?.encrypted ? 'https' : 'http',
        header: (name) => nodeHeader(req, name),
        body: nodeBody(req),
        signal: abortOnClose(res),
        req,
        createContext: (info) => (createContext ? createContext({ req, res, info }) : {}),
      })
      .then((answer) => write(res, answer))
      // serve() never throws; a socket that fails under the write has nobody left to answer.
      .catch(() => res.destroy());
  };

  return Object.assign(handler, { matches, close: core.close, stats: core.stats });
}
