import type { Cursor, SubscriptionResult, WireEvent } from '@trpc-longpoll/protocol';

/*
 * How a subscription's cursor moves with what the server sends. Pure, so the
 * tab that polls (to build its next poll) and the tab that delivers (to drop
 * resent events) compute the same cursor from the same results, even when
 * they are different tabs; both come here through `judgeResult` (verdict.ts).
 */

/** The cursor once `run` serves the subscription: a new run numbers its events from 1; the tracked id carries over. */
export function enterRun(cursor: Cursor | undefined, run: string | undefined): Cursor | undefined {
  if (run === undefined || cursor?.run === run) return cursor;
  const next: Cursor = { run, seq: 0 };
  if (cursor?.lastEventId !== undefined) next.lastEventId = cursor.lastEventId;
  return next;
}

/** Whether `event` is news; an event at or below the cursor is a resend after a lost answer. */
export function isNewEvent(cursor: Cursor | undefined, event: WireEvent): cursor is Cursor {
  return cursor !== undefined && event.seq > cursor.seq;
}

/** The cursor after delivering `event` (which must be new). */
export function afterEvent(cursor: Cursor, event: WireEvent): Cursor {
  const next: Cursor = { ...cursor, seq: event.seq };
  if (event.id !== undefined) next.lastEventId = event.id;
  return next;
}

/**
 * The cursor after a whole result, as if every new event in it was delivered;
 * `news`, when given, receives those events in order (the others are resends).
 */
export function advanceCursor(cursor: Cursor | undefined, result: SubscriptionResult, news?: WireEvent[]): Cursor | undefined {
  let next = enterRun(cursor, result.run);
  for (const event of result.events ?? []) {
    if (!isNewEvent(next, event)) continue;
    next = afterEvent(next, event);
    // A bookmark only moves the position; the application never sees it.
    if (!event.bookmark) news?.push(event);
  }
  return next;
}

/** The cursor that asks the server for a new run after this one ended with a retryable error. */
export function restartCursor(cursor: Cursor | undefined): Cursor | undefined {
  return cursor ? { ...cursor, restart: true } : cursor;
}
