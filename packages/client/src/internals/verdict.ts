import { TRPCClientError } from '@trpc/client';
import type { TRPCCombinedDataTransformer } from '@trpc/server';
import { isRetryableEnd, type CursorErrorReason, type WireEnd } from '@trpc-longpoll/protocol';

export interface ErrorShape {
  message: string;
  code: number;
  data?: unknown;
}

/** The tRPC error shape out of its serialized form, or null if it is not one. */
export function deserializeShape(transformer: TRPCCombinedDataTransformer, error: unknown): ErrorShape | null {
  try {
    const shape = transformer.output.deserialize(error) as { message?: unknown; code?: unknown };
    if (shape && typeof shape.message === 'string' && typeof shape.code === 'number') return shape as ErrorShape;
  } catch {
    // Fall through: an undecodable shape is reported as a plain failure.
  }
  return null;
}

/** What a run's end means for its subscription; the poll loop and the subscription must judge alike. */
export type EndVerdict =
  | { kind: 'stopped' }
  | { kind: 'cursor'; shape: ErrorShape; reason: CursorErrorReason }
  /** `retryAfterMs`: the server refused the run for lack of capacity and asks for at least this pause. */
  | { kind: 'retry'; shape: ErrorShape; retryAfterMs?: number }
  | { kind: 'fatal'; shape: ErrorShape };

export function judgeEnd(transformer: TRPCCombinedDataTransformer, end: WireEnd): EndVerdict {
  if (end.type === 'stopped') return { kind: 'stopped' };
  const shape = deserializeShape(transformer, end.error) ?? { message: 'The subscription failed', code: -32603 };
  if (end.reason) return { kind: 'cursor', shape, reason: end.reason };
  if (!isRetryableEnd(shape.code, end.retryAfterMs)) return { kind: 'fatal', shape };
  return end.retryAfterMs === undefined ? { kind: 'retry', shape } : { kind: 'retry', shape, retryAfterMs: end.retryAfterMs };
}

/**
 * A poll-wide failure in a form another tab can receive (structured clone
 * cannot carry a `TRPCClientError`); the error shape stays serialized so the
 * receiving tab decodes it with its own transformer.
 */
export type WireFailure = { kind: 'transient'; message: string } | { kind: 'fatal'; status: number; error?: unknown };

/** The fatal poll error for a non-200 answer; `meta` exists only in the tab that made the request. */
export function pollError(
  transformer: TRPCCombinedDataTransformer,
  status: number,
  error: unknown,
  meta?: Record<string, unknown>,
): TRPCClientError<any> {
  const shape = error === undefined ? null : deserializeShape(transformer, error);
  const opts = meta ? { meta } : {};
  return shape
    ? TRPCClientError.from({ error: shape as never }, opts)
    : new TRPCClientError(`The poll failed with HTTP ${status}`, opts);
}

/** Rebuilds, in a follower tab, the error the leader tab saw. */
export function errorFromWire(transformer: TRPCCombinedDataTransformer, failure: WireFailure): TRPCClientError<any> {
  return failure.kind === 'transient'
    ? new TRPCClientError(failure.message)
    : pollError(transformer, failure.status, failure.error);
}
