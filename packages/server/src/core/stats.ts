import type { CursorErrorReason } from '@trpc-longpoll/protocol';

/** One budget: how much of it is in use now, and its limit. */
export interface BudgetUse {
  used: number;
  limit: number;
}

/** Why a poll was refused (the whole poll, or one subscription for lack of run budget). */
export type RefusalReason =
  | 'method'
  | 'content-type'
  | 'body-too-large'
  | 'body-timeout'
  | 'body-unreadable'
  | 'parse'
  | 'invalid'
  | 'too-many-subscriptions'
  | 'closed'
  | 'held-polls'
  | 'sessions'
  | 'identity-sessions'
  | 'context'
  | 'runs'
  | 'identity-runs';

/** Why an answer to a poll went out (farewells and refusals are not counted here). */
export type PollOutcome = 'news' | 'holdExpired' | 'released' | 'drain' | 'stale';

/** Counters since the handler was created; they only grow. */
export interface LongPollCounters {
  polls: Record<PollOutcome, number>;
  /** By reason; `status` is the HTTP status the refusal answered with (503/429 for a refused subscription). */
  refusals: Partial<Record<RefusalReason, { status: number; count: number }>>;
  runs: { started: number; resumed: number; adopted: number };
  /** Subscription ends that carried a cursor error reason. */
  cursorErrors: Record<CursorErrorReason, number>;
  /** Events put into answers; an event resent (its answer was not acknowledged) counts again. */
  eventsDelivered: number;
  /**
   * Several instances (the `cluster` option): `announced`, polls and farewells this
   * instance told the others about because the client came from elsewhere; `dropped`,
   * sessions this instance let go because their client was served by another one.
   */
  moves: { announced: number; dropped: number };
}

/** A cheap snapshot of a long-poll handler: what it holds now, its budgets, and its counters since start. */
export interface LongPollStats {
  /** Polls being held open right now, waiting for news. */
  heldPolls: number;
  /** Polls between admission and answer: reading a body, creating a context, held. */
  pollsInProgress: number;
  /** Clients the server keeps state for. */
  sessions: number;
  /** Running procedures, by procedure path. */
  runs: { total: number; byPath: Record<string, number> };
  /** Events buffered and not yet acknowledged, across all runs. */
  bufferedEvents: number;
  bufferedBytes: number;
  budgets: { sessions: BudgetUse; runs: BudgetUse; heldPolls: BudgetUse; totalBufferedBytes: BudgetUse };
  counters: LongPollCounters;
}

/** The counters, incremented in place where things happen; `snapshot()` copies them. */
export class StatsCounters {
  private readonly counters: LongPollCounters = {
    polls: { news: 0, holdExpired: 0, released: 0, drain: 0, stale: 0 },
    refusals: {},
    runs: { started: 0, resumed: 0, adopted: 0 },
    cursorErrors: { 'resume-lost': 0, gone: 0, reset: 0, 'no-affinity': 0 },
    eventsDelivered: 0,
    moves: { announced: 0, dropped: 0 },
  };

  poll(outcome: PollOutcome, events = 0): void {
    this.counters.polls[outcome]++;
    this.counters.eventsDelivered += events;
  }

  refusal(reason: RefusalReason, status: number): void {
    const entry = (this.counters.refusals[reason] ??= { status, count: 0 });
    entry.status = status;
    entry.count++;
  }

  run(kind: keyof LongPollCounters['runs']): void {
    this.counters.runs[kind]++;
  }

  move(kind: keyof LongPollCounters['moves']): void {
    this.counters.moves[kind]++;
  }

  cursorError = (reason: CursorErrorReason): void => {
    this.counters.cursorErrors[reason]++;
  };

  snapshot(): LongPollCounters {
    const { polls, refusals, runs, cursorErrors, eventsDelivered, moves } = this.counters;
    const refusalsCopy: LongPollCounters['refusals'] = {};
    for (const [reason, entry] of Object.entries(refusals)) refusalsCopy[reason as RefusalReason] = { ...entry };
    return { polls: { ...polls }, refusals: refusalsCopy, runs: { ...runs }, cursorErrors: { ...cursorErrors }, eventsDelivered, moves: { ...moves } };
  }
}
