import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PollBody } from '../core/http';

/** `/api/trpc/` → `api/trpc`, as tRPC compares endpoints. */
export function trimSlashes(path: string): string {
  return path.replace(/^\/+|\/+$/g, '');
}

/** The poll endpoint is the tRPC endpoint itself: no procedure path can be empty. */
export function isPollPath(pathname: string | null, endpoint: string): boolean {
  return pathname !== null && trimSlashes(pathname) === trimSlashes(endpoint);
}

/**
 * A signal that aborts when the client goes away before the answer is out:
 * a closed socket ends the hold instead of leaving it to time out.
 */
export function abortOnClose(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}

/**
 * A Node request's body: what a framework's parser made of it, or the stream
 * itself. A parser that skipped the request may still have set `req.body`
 * (Express 4 sets `{}`), so only a stream read to its end counts as parsed.
 */
export function nodeBody(req: IncomingMessage & { body?: unknown }): PollBody {
  if (req.body !== undefined && req.readableEnded) return typeof req.body === 'string' ? { text: req.body } : { parsed: req.body };
  return { stream: req };
}

/** A header of a Node request by lower-case name; repeated headers are joined as HTTP allows. */
export function nodeHeader(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}
