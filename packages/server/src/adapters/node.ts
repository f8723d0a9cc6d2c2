import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AnyTRPCRouter } from '@trpc/server';
import type { NodeHTTPCreateContextFnOptions } from '@trpc/server/adapters/node-http';
import { createLongPollCore, type CoreResponse } from '../core/core';
import type { LongPollOptions } from '../core/options';
import type { CreateContextOption } from './context';
import { abortOnClose, BodyTooLargeError, INTERNAL_ERROR, isPollPath, readLimited, reportBug } from './shared';

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
  matches(req: TRequest): boolean;
  close(): Promise<void>;
}

function write(res: ServerResponse, answer: CoreResponse): void {
  if (res.headersSent || res.destroyed) return;
  res.statusCode = answer.status;
  for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
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

  const matches = (req: TRequest) => req.method === 'POST' && isPollPath(new URL(req.url ?? '/', 'http://x').pathname, endpoint);

  async function serve(req: TRequest, res: TResponse): Promise<void> {
    const signal = abortOnClose(res);
    let body: unknown = req.body;
    // A parser that skipped this request may still have set `req.body` (Express 4 sets `{}`); the stream tells.
    if (body === undefined || !req.readableEnded) {
      try {
        const declared = Number(req.headers['content-length'] ?? 0);
        if (declared > core.options.maxBodyBytes) throw new BodyTooLargeError(core.options.maxBodyBytes);
        body = await readLimited(req, core.options.maxBodyBytes);
      } catch (cause) {
        const tooLarge = cause instanceof BodyTooLargeError;
        write(res, core.errorResponse(tooLarge ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST', tooLarge ? cause.message : 'The poll body could not be read', req));
        // Stop reading an oversized upload; the answer is already out.
        if (tooLarge) req.resume();
        return;
      }
    }
    const host = req.headers.host ?? 'localhost';
    const url = new URL(req.url ?? '/', `http://${host}`);
    const answer = await core.handle({
      body,
      signal,
      url,
      req,
      createContext: (info) => (createContext ? createContext({ req, res, info }) : {}),
    });
    write(res, answer);
  }

  const handler = (req: TRequest, res: TResponse, next?: (err?: unknown) => void): void => {
    if (!matches(req)) {
      if (next) return next();
      res.statusCode = 404;
      res.end();
      return;
    }
    serve(req, res).catch((cause: unknown) => {
      // Only a bug (or a throwing errorFormatter) gets here; answer without leaking it and keep serving.
      write(res, INTERNAL_ERROR);
      reportBug(opts.onError, cause, req);
    });
  };

  return Object.assign(handler, { matches, close: core.close });
}
