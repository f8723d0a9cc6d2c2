import type { AnyTRPCRouter } from '@trpc/server';
import type { LongPollStats } from '../core/pipeline';
import type { Request, RequestHandler, Response } from 'express';
import { createLongPollNodeHandler, type LongPollNodeHandlerOptions } from './node';

/** The options of `createExpressMiddleware` (`router`, `createContext` with `{ req, res, info }`, `onError`) plus the long-poll ones. */
export type LongPollExpressOptions<TRouter extends AnyTRPCRouter> = LongPollNodeHandlerOptions<TRouter, Request, Response>;

export type LongPollExpressMiddleware = RequestHandler & {
  /** Answers every held poll now, stops every procedure and refuses new polls with 503. */
  close(): Promise<void>;
  /** A cheap snapshot: polls held, runs by path, buffers, budgets and counters since start (see the README's Stats). */
  stats(): LongPollStats;
};

/**
 * Express middleware that answers polls and passes every other request on,
 * so it mounts in front of tRPC's own middleware on the same path:
 *
 * `app.use('/trpc', createLongPollExpressMiddleware(opts), createExpressMiddleware(opts))`
 *
 * A body `express.json()` already parsed is used as is.
 */
export function createLongPollExpressMiddleware<TRouter extends AnyTRPCRouter>(
  opts: LongPollExpressOptions<TRouter>,
): LongPollExpressMiddleware {
  const handler = createLongPollNodeHandler<TRouter, Request, Response>(opts);
  const middleware: RequestHandler = (req, res, next) => handler(req, res, next);
  return Object.assign(middleware, { close: handler.close, stats: handler.stats });
}
