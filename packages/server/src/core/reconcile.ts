import type { Cursor } from '@trpc-longpoll/protocol';

/** What the decision needs to know of the run a session caches for a subscription. */
export interface CachedRun {
  readonly id: string;
  /** The run has ended (stopped or failed); its end may not have been answered yet. */
  readonly ended: boolean;
  /** It failed before its iterator existed (bad input, a middleware's error). */
  readonly failedAtStart: boolean;
  /** The cursor it was started to resume, if any. */
  readonly origin: Cursor | undefined;
  /** Whether a client at `lastEventId` stands where this run is or at one of its buffered events. */
  linesUpWith(lastEventId: string): boolean;
}

/**
 * What to do with a subscription (docs/protocol.md §6). The decisions that
 * keep the cached run carry it; `start` and `lost` leave it behind, and
 * whoever applies them stops it first.
 */
export type Decision<R extends CachedRun = CachedRun> =
  /** The cached run serves the subscription as it is. */
  | { action: 'keep'; run: R }
  /** The cached run serves it, and the client has every event up to `seq`. */
  | { action: 'ack'; run: R; seq: number }
  /** The cached run serves it from now on; the client has its events up to `lastEventId`. */
  | { action: 'adopt'; run: R; lastEventId: string }
  /** A new run, started from `lastEventId`. */
  | { action: 'start'; lastEventId: string | undefined }
  /** Nothing can continue from the cursor: the subscription ends with `resume-lost`. */
  | { action: 'lost' };

/**
 * Matches a subscription's cursor against the run its session caches. Pure:
 * it only reads, and `inputPosition` (the `lastEventId` of the client's
 * input) is asked for only when the client has no event yet, so a poll of
 * running subscriptions never deserializes their inputs.
 */
export function reconcile<R extends CachedRun>(
  cursor: Cursor | undefined,
  run: R | undefined,
  inputPosition: () => string | undefined,
): Decision<R> {
  if (run) {
    // The answer that announced the run was lost.
    if (!cursor) return { action: 'keep', run };
    if (cursor.run === run.id) {
      return cursor.restart && run.ended ? { action: 'start', lastEventId: cursor.lastEventId } : { action: 'ack', run, seq: cursor.seq };
    }
    // Started from this very cursor, and the answer announcing it was lost. The whole cursor must match: a client
    // that came back to a run resets `seq` to 0, so run and seq alone recur later with another lastEventId.
    const origin = run.origin;
    if (origin && origin.run === cursor.run && origin.seq === cursor.seq && origin.lastEventId === cursor.lastEventId) {
      return { action: 'keep', run };
    }
    // A client that has no event yet stands where its input's lastEventId puts it.
    const position = cursor.lastEventId ?? (cursor.seq === 0 ? inputPosition() : undefined);
    // A run that failed before its iterator existed has no position anyone can line up with.
    if (!cursor.restart && position !== undefined && !run.failedAtStart && run.linesUpWith(position)) {
      return { action: 'adopt', run, lastEventId: position };
    }
  }
  if (!cursor) return { action: 'start', lastEventId: undefined };
  if (cursor.restart || cursor.lastEventId !== undefined || cursor.seq === 0) return { action: 'start', lastEventId: cursor.lastEventId };
  // Untracked events cannot be replayed: the client is told instead of silently missing some.
  return { action: 'lost' };
}
