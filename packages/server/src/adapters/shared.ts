import { TRPCError } from '@trpc/server';
/** `/api/trpc/` → `api/trpc`, as tRPC compares endpoints. */
export function trimSlashes(path: string): string {
  return path.replace(/^\/+|\/+$/g, '');
}

/** The poll endpoint is the tRPC endpoint itself: no procedure path can be empty. */
export function isPollPath(pathname: string, endpoint: string): boolean {
  return trimSlashes(pathname) === trimSlashes(endpoint);
}

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`The poll body is larger than ${limit} bytes`);
  }
}

/** Reads UTF-8 chunks, giving up as soon as the limit is passed. */
export async function readLimited(chunks: AsyncIterable<Uint8Array | string>, limit: number): Promise<string> {
  const decoder = new TextDecoder();
  let size = 0;
  let text = '';
  for await (const chunk of chunks) {
    const bytes = typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk;
    size += bytes.byteLength;
    if (size > limit) throw new BodyTooLargeError(limit);
    text += decoder.decode(bytes, { stream: true });
  }
  return text + decoder.decode();
}

/**
 * A signal that aborts when the client goes away before the answer is out:
 * a closed socket ends the hold instead of leaving it to time out.
 */
export function abortOnClose(res: import('node:http').ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}

/** The answer to a bug in the handler itself: no message, stack or internals of it leave the process. */
export const INTERNAL_ERROR = {
  status: 500,
  headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  body: '{"v":1,"error":{"message":"Internal server error","code":-32603}}',
} as const;

/** Hands an unexpected failure to `onError`, which must not turn it into a second one. */
export function reportBug(onError: ((opts: any) => void) | undefined, cause: unknown, req: unknown): void {
  try {
    const error = new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: 'The long-poll handler failed', cause });
    onError?.({ error, type: 'subscription', path: undefined, input: undefined, ctx: undefined, req });
  } catch {
    // Nothing left to tell.
  }
}
