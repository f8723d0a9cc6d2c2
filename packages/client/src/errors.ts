import { TRPCClientError } from '@trpc/client';
import type { AnyTRPCRouter } from '@trpc/server';
import type { CursorErrorReason } from '@trpc-longpoll/protocol';

/**
 * The subscription could not continue from its cursor, so events may have
 * been missed; it arrives through `onError` and ends the subscription.
 * `reason` says why (see docs/protocol.md, "Cursor errors"):
 * - `resume-lost`: the server lost the subscription's state and the procedure
 *   yields untracked events, so it cannot resume (`data.code` is `CONFLICT`);
 * - `gone`: the cursor is older than the event log keeps;
 * - `reset`: the cursor is ahead of the event log (flushed or restored).
 * - `no-affinity`: as `resume-lost`, with the cause known: the load balancer
 *   sent the poll to another instance than the one running the untracked
 *   procedure; route clients by `lp_affinity` (docs/scaling.md) or yield
 *   tracked events. Subscribing again behind the same balancer fails again.
 * Resync the data the subscription feeds, then subscribe again.
 */
export class LongPollCursorError<TRouter extends AnyTRPCRouter = AnyTRPCRouter> extends TRPCClientError<TRouter> {
  readonly reason: CursorErrorReason;

  constructor(shape: { message: string; code: number; data?: unknown }, reason: CursorErrorReason) {
    super(shape.message, { result: { error: shape as never } });
    Object.setPrototypeOf(this, LongPollCursorError.prototype);
    this.reason = reason;
  }
}

export function isLongPollCursorError(error: unknown): error is LongPollCursorError {
  return error instanceof LongPollCursorError;
}
