import type { AnyTRPCRouter } from '@trpc/server';
import type { FetchCreateContextFnOptions } from '@trpc/server/adapters/fetch';
import { createLongPollCore, type CoreResponse } from '../core/core';
import type { LongPollOptions } from '../core/options';
import type { CreateContextOption } from './context';
import { BodyTooLargeError, INTERNAL_ERROR, isPollPath, readLimited, reportBug } from './shared';

export type LongPollHandlerOptions<TRouter extends AnyTRPCRouter> = LongPollOptions<TRouter, Request> &
  CreateContextOption<TRouter, FetchCreateContextFnOptions> & {
    /** Where tRPC is served, such as `/api/trpc`. Polls are POSTs to exactly this path. Default `/`. */
    endpoint?: string;
  };

export interface LongPollFetchHandler {
  /** Answers a poll. */
  (req: Request): Promise<Response>;
  /** Whether `req` is a poll (a POST to the endpoint itself), so it can be routed here and the rest to tRPC. */
  matches(req: Request): boolean;
  /** Answers every held poll now, stops every procedure and refuses new polls with 503. */
  close(): Promise<void>;
}

function toResponse(res: CoreResponse, extra?: Headers): Response {
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

  const serve = async (req: Request): Promise<Response> => {
    if (req.method !== 'POST') {
      return toResponse(core.errorResponse('METHOD_NOT_SUPPORTED', 'Polls are POST requests', req, { allow: 'POST' }));
    }
    let body: string;
    try {
      const declared = Number(req.headers.get('content-length') ?? 0);
      if (declared > core.options.maxBodyBytes) throw new BodyTooLargeError(core.options.maxBodyBytes);
      body = req.body ? await readLimited(req.body as unknown as AsyncIterable<Uint8Array>, core.options.maxBodyBytes) : '';
    } catch (cause) {
      if (cause instanceof BodyTooLargeError) return toResponse(core.errorResponse('PAYLOAD_TOO_LARGE', cause.message, req));
      return toResponse(core.errorResponse('BAD_REQUEST', 'The poll body could not be read', req));
    }
    const resHeaders = new Headers();
    const res = await core.handle({
      body,
      signal: req.signal,
      url: new URL(req.url),
      req,
      createContext: (info) => (createContext ? createContext({ req, resHeaders, info }) : {}),
    });
    return toResponse(res, resHeaders);
  };

  const handler = (req: Request): Promise<Response> =>
    serve(req).catch((cause: unknown) => {
      // Only a bug (or a throwing errorFormatter) gets here; answer without leaking it.
      reportBug(opts.onError, cause, req);
      return toResponse(INTERNAL_ERROR);
    });

  return Object.assign(handler, {
    matches: (req: Request) => req.method === 'POST' && isPollPath(new URL(req.url).pathname, endpoint),
    close: core.close,
  });
}
