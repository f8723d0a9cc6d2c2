import type { AnyTRPCRouter } from '@trpc/server';
import type { NextApiRequest, NextApiResponse } from 'next';
import type { LongPollStats } from '../core/pipeline';
import { createLongPollNodeHandler, type LongPollNodeHandlerOptions } from './node';

/**
 * The options of `createNextApiHandler` (`router`, `createContext` with `{ req, res, info }`, `onError`)
 * plus the long-poll ones; `endpoint` is the API route's path, such as `/api/trpc`.
 */
export type LongPollNextApiHandlerOptions<TRouter extends AnyTRPCRouter> = LongPollNodeHandlerOptions<TRouter, NextApiRequest, NextApiResponse>;

export interface LongPollNextApiHandler {
  /** Answers a poll; resolves once the answer is written, so Next.js sees the route finish with its response. */
  (req: NextApiRequest, res: NextApiResponse): Promise<void>;
  /** Whether `req` is a poll (a POST to the endpoint itself); route the rest to `createNextApiHandler`. */
  matches(req: NextApiRequest): boolean;
  /** Answers every held poll now, stops every procedure and refuses new polls with 503. */
  close(): Promise<void>;
  /** A cheap snapshot: polls held, runs by path, buffers, budgets and counters since start (see the README's Stats). */
  stats(): LongPollStats;
}

/**
 * The long-poll handler for a Pages Router API route, beside tRPC's `createNextApiHandler`
 * in `pages/api/trpc/[[...trpc]].ts`:
 *
 * `export default (req, res) => (longPoll.matches(req) ? longPoll(req, res) : trpc(req, res))`
 *
 * Next's body parser, when on, has read and parsed the body already: the handler uses
 * `req.body` as Express's adapter does. With `bodyParser: false` it reads the body itself.
 */
export function createLongPollNextApiHandler<TRouter extends AnyTRPCRouter>(
  opts: LongPollNextApiHandlerOptions<TRouter>,
): LongPollNextApiHandler {
  const handler = createLongPollNodeHandler<TRouter, NextApiRequest, NextApiResponse>(opts);
  // Next.js awaits the route's promise: one that settled before the answer makes it warn (in dev) of a stalled request.
  const answer = (req: NextApiRequest, res: NextApiResponse) =>
    new Promise<void>((resolve) => {
      res.once('close', () => resolve());
      handler(req, res);
    });
  return Object.assign(answer, { matches: handler.matches, close: handler.close, stats: handler.stats });
}
