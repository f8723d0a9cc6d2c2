import { TRPCError } from '@trpc/server';

/**
 * The two ways a cursor can stop working. Both extend `TRPCError`, so the
 * client gets their code, and carry `cursorReason`, which the long-poll
 * transport turns into `LongPollCursorError.reason`. The remedy is the same:
 * reload the state the subscription feeds, then subscribe without
 * `lastEventId` (or with an id from the reloaded state).
 */
export type EventLogCursorReason = 'gone' | 'reset';

interface CursorErrorInit {
  topic: string;
  /** The `lastEventId` (or position) that could not be served. */
  cursor: string;
  message?: string;
}

/**
 * Events after the cursor were already dropped by retention (the subscriber
 * was away too long), so continuing would skip them. Code `CONFLICT`, like
 * HTTP 409 "must refetch" in other sync protocols.
 */
export class EventLogGoneError extends TRPCError {
  readonly cursorReason = 'gone' as const;
  readonly topic: string;
  readonly cursor: string;

  constructor(init: CursorErrorInit) {
    super({
      code: 'CONFLICT',
      message:
        init.message ??
        `Events after "${init.cursor}" on "${init.topic}" are no longer retained; reload the data and subscribe again without lastEventId`,
    });
    this.topic = init.topic;
    this.cursor = init.cursor;
  }
}

/**
 * The log does not hold the cursor's history: it was flushed, restored from
 * an older copy, or the id came from another log. It is raised only after
 * the log had a grace period to catch up (a lagging replica may). Code
 * `PRECONDITION_FAILED`.
 */
export class EventLogResetError extends TRPCError {
  readonly cursorReason = 'reset' as const;
  readonly topic: string;
  readonly cursor: string;

  constructor(init: CursorErrorInit) {
    super({
      code: 'PRECONDITION_FAILED',
      message:
        init.message ??
        `The event log no longer knows "${init.cursor}" on "${init.topic}" (flushed or restored); reload the data and subscribe again without lastEventId`,
    });
    this.topic = init.topic;
    this.cursor = init.cursor;
  }
}

export function isEventLogCursorError(error: unknown): error is EventLogGoneError | EventLogResetError {
  return error instanceof EventLogGoneError || error instanceof EventLogResetError;
}
