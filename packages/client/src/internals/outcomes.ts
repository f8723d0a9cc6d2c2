import type { TRPCClientError } from '@trpc/client';
import type { AnyTRPCRouter } from '@trpc/server';

/** What every poll outcome tells. */
export interface PollOutcomeBase {
  /** The poll's number (1, 2, 3, … for the client id). */
  poll: number;
  /** The client id the poll went out under. */
  client: string;
  /** Subscriptions the poll carried. */
  subscriptions: number;
  /** From sending the poll to its outcome, in ms: a held poll's hold is in it. */
  durationMs: number;
}

/** The server answered; the subscriptions got their results. */
export interface PollAnsweredInfo extends PollOutcomeBase {
  type: 'answered';
  /** Events the answer carried (position-only bookmarks included), over all subscriptions. */
  events: number;
  /** Subscriptions that had something in the answer: events, a start, an end. */
  results: number;
  /** A draining server asked for this pause (`Retry-After`) before the next poll; 0 otherwise. */
  pauseMs: number;
}

/** Why a poll failed. */
export type PollFailureReason =
  /** `fetch` threw: the server is down or unreachable, the connection dropped. */
  | 'network'
  /** No answer within hold + hold/16 + `watchdogMarginMs`: the link gave up on the request. */
  | 'watchdog'
  /** The server (or a proxy) answered with an error status. */
  | 'http'
  /** A 2xx answer that is not a trpc-longpoll response (a captive portal, a misrouted proxy). */
  | 'invalid-answer';

interface PollFailedBase extends PollOutcomeBase {
  type: 'failed';
  error: TRPCClientError<AnyTRPCRouter>;
  /**
   * The pause chosen before the next poll, in ms (backoff with jitter, or the server's
   * `Retry-After`); `null` when the failure is fatal and ended the subscriptions it carried.
   */
  backoffMs: number | null;
}

/** The poll failed; its subscriptions show `connecting` (or end, when `backoffMs` is `null`). */
export type PollFailedInfo =
  | (PollFailedBase & { reason: 'http'; /** The HTTP status answered. */ status: number })
  | (PollFailedBase & { reason: Exclude<PollFailureReason, 'http'> });

/**
 * The server took the poll for an old one (its client id has seen a higher number): nothing
 * changed. After a few in a row the link continues under a fresh client id.
 */
export interface PollStaleInfo extends PollOutcomeBase {
  type: 'stale';
  /** Stale answers in a row, this one included. */
  inARow: number;
  /** The pause before the next poll, in ms. */
  backoffMs: number;
  /** The next poll goes out under a new client id. */
  newClient: boolean;
}

/**
 * What became of one poll, for `longPollLink`'s `onPollOutcome`: connection health
 * for an app to show or log. Polls cancelled by the link itself (the set of
 * subscriptions changed, the link stopped) and the farewell have no outcome.
 */
export type PollOutcomeInfo = PollAnsweredInfo | PollFailedInfo | PollStaleInfo;

/** Calls the app's hook; a hook that throws is logged, and polling goes on. */
export function reportOutcome(hook: ((outcome: PollOutcomeInfo) => void) | undefined, outcome: PollOutcomeInfo): void {
  if (!hook) return;
  try {
    hook(outcome);
  } catch (cause) {
    // Not rethrown: a logging hook must not take the poll loop (or, in Node, the process) down with it.
    console.error('trpc-longpoll: onPollOutcome threw', cause);
  }
}
