import { TRPCError } from '@trpc/server';

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
