import { TRPCClientError } from '@trpc/client';
import type { AnyTRPCRouter } from '@trpc/server';
import type { CursorErrorReason } from '@trpc-longpoll/protocol';

/**
 * The subscription could not continue from where it was: the server lost
 * its state and the procedure yields untracked events, so some may have been
 * missed. It arrives through `onError` (its `data.code` is `CONFLICT`);
 * subscribe again to start afresh, or make the procedure yield `tracked()`
 * events so it can resume.
 */
export class LongPollResumeError<TRouter extends AnyTRPCRouter = AnyTRPCRouter> extends TRPCClientError<TRouter> {
  readonly reason: CursorErrorReason;

  constructor(shape: { message: string; code: number; data?: unknown }, reason: CursorErrorReason) {
    super(shape.message, { result: { error: shape as never } });
    Object.setPrototypeOf(this, LongPollResumeError.prototype);
    this.reason = reason;
  }
}

export function isLongPollResumeError(error: unknown): error is LongPollResumeError {
  return error instanceof LongPollResumeError;
}
