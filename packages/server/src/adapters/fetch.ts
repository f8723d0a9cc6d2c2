import type { AnyTRPCRouter } from '@trpc/server';
import type { FetchCreateContextFnOptions } from '@trpc/server/adapters/fetch';
import { createLongPollCore, type LongPollStats } from '../core/pipeline';
import { pathnameOf, type CoreResponse } from '../core/http';
import type { LongPollOptions } from '../core/options';
import type { CreateContextOption } from './context';
import { isPollPath } from './shared';

export type LongPollHandlerOptions<TRouter extends AnyTRPCRouter> = LongPollOptions<TRouter, Request> &
  CreateContextOption<TRouter, FetchCreateContextFnOptions> & {
    /** Where tRPC is served, such as `/api/trpc`. Polls are POSTs to exactly this path. Default `/`. */
    endpoint?: string;
  };

export interface LongPollFetchHandler {
  /** Answers a poll; never rejects. */
  (req: Request): Promise<Response>;
  /** Whether `req` is a poll (a POST to the endpoint itself), so it can be routed here and the rest to tRPC. */
  matches(req: Request): boolean;
  /** Answers every held poll now, stops every procedure and refuses new polls with 503. */
  close(): Promise<void>;
  /** A cheap snapshot: polls held, runs by path, buffers, budgets and counters since start (see the README's Stats). */
  stats(): LongPollStats;
}

function toResponse(res: CoreResponse, extra: Headers): Response {
  const headers = new Headers(extra);
  for (const [name, value] of Object.entries(res.headers)) headers.set(name, value);
  return new Response(res.body, { status: res.status, headers });
}

/**
 * The runtime-agnostic long-poll handler: a Fetch `Request` in, a `Response`
 * out. `createContext` gets `{ req, resHeaders, info }` like tRPC's fetch adapter.
 */
export function createLongPollHandler<TRouter extends AnyTRPCRouter>(opts: LongPollHandlerOptions<TRouter>): LongPollFetchHandler {
  const core = createLongPollCore(opts);
  const endpoint = opts.endpoint ?? '/';
  const createContext = (opts as { createContext?: (o: FetchCreateContextFnOptions) => unknown }).createContext;

  const handler = async (req: Request): Promise<Response> => {
    const resHeaders = new Headers();
    const answer = await core.serve({
      method: req.method,
      url: req.url,
      header: (name) => req.headers.get(name) ?? undefined,
      body: req.body ? { stream: req.body as unknown as AsyncIterable<Uint8Array> } : { text: '' },
      signal: req.signal,
      req,
      createContext: (info) => (createContext ? createContext({ req, resHeaders, info }) : {}),
    });
    return toResponse(answer, resHeaders);
  };

  return Object.assign(handler, {
    matches: (req: Request) => req.method === 'POST' && isPollPath(pathnameOf(req.url), endpoint),
    close: core.close,
    stats: core.stats,
  });
}
