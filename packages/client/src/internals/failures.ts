import { TRPCClientError } from '@trpc/client';
import type { TRPCCombinedDataTransformer } from '@trpc/server';

/*
 * Errors as the server sends them: tRPC error shapes, still serialized with
 * the output transformer, and the poll-wide failures a leader tab passes on.
 */

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
