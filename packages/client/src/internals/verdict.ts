import type { TRPCCombinedDataTransformer } from '@trpc/server';
import { isRetryableEnd, type Cursor, type CursorErrorReason, type SubscriptionResult, type WireEnd, type WireEvent } from '@trpc-longpoll/protocol';
import { advanceCursor, restartCursor } from './cursor';
import { deserializeShape, type ErrorShape } from './failures';

/*
 * The per-subscription rules of docs/protocol.md §8, in one place. The poll
 * loop (to build its next poll) and each subscription (to emit envelopes) run
 * them on the same results, often in different tabs; being pure, they reach
 * the same cursor and the same verdict, so the poll acknowledges exactly what
 * the subscription was handed.
 */

/** What a run's end means for its subscription. */
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

/** What the rules need to know of a subscription between answers. */
export interface SubscriptionState {
  cursor?: Cursor | undefined;
  /** The subscription got through (`started`) and no failure came since. */
  healthy: boolean;
}

export interface Judgement extends SubscriptionState {
  /** The subscription is through again (or for the first time): `started` is due, before any event. */
  started: boolean;
  /** The events to deliver, in order; the rest of the result's events were delivered before. */
  news: WireEvent[];
  /** Set when the run ended. A retryable end leaves `cursor` asking for a new run and `healthy` false. */
  end?: EndVerdict;
}

/**
 * What one answer means for one subscription that the answered poll carried;
 * `result` is absent when the server had nothing new for it.
 */
export function judgeResult(
  state: SubscriptionState,
  result: SubscriptionResult | undefined,
  transformer: TRPCCombinedDataTransformer,
): Judgement {
  const news: WireEvent[] = [];
  let cursor = result ? advanceCursor(state.cursor, result, news) : state.cursor;
  // A run serving it proves the subscription is through; so does an answer without news once it has a cursor,
  // which is how a poll with `hold: 0` after a failure tells that it got through.
  const started = !state.healthy && (result ? result.run !== undefined : state.cursor !== undefined);
  let healthy = state.healthy || started;
  if (!result?.end) return { cursor, healthy, started, news };
  const end = judgeEnd(transformer, result.end);
  if (end.kind === 'retry') {
    // The run is over; the next run is asked for from this one's position.
    cursor = restartCursor(cursor);
    healthy = false;
  }
  return { cursor, healthy, started, news, end };
}
