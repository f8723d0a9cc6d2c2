import { PROTOCOL_VERSION, type PollSubscription } from '@trpc-longpoll/protocol';

/*
 * What a poll says (docs/protocol.md §4): read from the runs of the poll's
 * session, changing none of them. Answers are written as JSON text, since
 * every event is serialized once when it is buffered.
 */

/** What an answer reads of a run. */
export interface AnsweredRun {
  readonly id: string;
  /** Unacknowledged events or an end. */
  readonly hasNews: boolean;
  readonly pending: readonly { readonly json: string }[];
  readonly endJson: string | null;
  readonly failedAtStart: boolean;
}

/** A subscription's outcome decided before any run: an error that ends it. */
export interface Verdict {
  errorJson: string;
}

export interface BatchLimits {
  maxBatchEvents: number;
  maxBatchBytes: number;
}

export interface PollAnswer {
  body: string;
  /**
   * Keys whose runs failed before their iterator existed: answered once, they
   * are to be forgotten, since no cursor can refer to them and a retry starts afresh (§6).
   */
  forget: string[];
  /** Events put into the answer. */
  events: number;
}

export const EMPTY_ANSWER = `{"v":${PROTOCOL_VERSION},"results":{}}`;
export const STALE_ANSWER = `{"v":${PROTOCOL_VERSION},"results":{},"stale":true}`;

/** Whether the poll has something to say at once instead of being held (§5, step 7). */
export function hasNews(runs: ReadonlyMap<string, AnsweredRun>, subscriptions: readonly PollSubscription[]): boolean {
  for (const sub of subscriptions) {
    const run = runs.get(sub.key);
    if (!run) continue;
    if (run.hasNews) return true;
    // A new subscription or a requested restart is announced at once (the client waits for `started`). A run
    // that only resumes a cursor the client already follows waits for news like any other: announcing it at
    // once would answer every poll at once behind a non-sticky load balancer, each restarting the procedure.
    if (sub.cursor?.run !== run.id && (!sub.cursor || sub.cursor.restart)) return true;
  }
  return false;
}

/** Events are taken subscription by subscription in request order, up to the batch limits (§4, "Batching"). */
export function buildAnswer(
  runs: ReadonlyMap<string, AnsweredRun>,
  subscriptions: readonly PollSubscription[],
  verdicts: ReadonlyMap<string, Verdict>,
  limits: BatchLimits,
): PollAnswer {
  const batch = { events: 0, bytes: 0, more: false };
  const parts: string[] = [];
  const forget: string[] = [];
  for (const sub of subscriptions) {
    const key = JSON.stringify(sub.key);
    const verdict = verdicts.get(sub.key);
    const run = runs.get(sub.key);
    if (verdict) {
      parts.push(`${key}:{"end":${verdict.errorJson}}`);
    } else if (run?.failedAtStart) {
      forget.push(sub.key);
      parts.push(`${key}:{"end":${run.endJson}}`);
    } else if (run && (run.pending.length > 0 || run.endJson !== null || sub.cursor?.run !== run.id)) {
      // Bookmarks wake no poll, but travel with any answer that goes out.
      parts.push(`${key}:${resultOf(run, batch, limits)}`);
    }
  }
  return { body: `{"v":${PROTOCOL_VERSION},"results":{${parts.join(',')}}${batch.more ? ',"more":true' : ''}}`, forget, events: batch.events };
}

/** A run's result: its id, the events the batch still has room for, and its end once every event is in. */
function resultOf(run: AnsweredRun, batch: { events: number; bytes: number; more: boolean }, limits: BatchLimits): string {
  const pending = run.pending;
  const taken: string[] = [];
  for (const event of pending) {
    if (batch.events > 0 && (batch.events >= limits.maxBatchEvents || batch.bytes + event.json.length > limits.maxBatchBytes)) {
      batch.more = true;
      break;
    }
    taken.push(event.json);
    batch.events++;
    batch.bytes += event.json.length;
  }
  let result = `{"run":${JSON.stringify(run.id)}`;
  if (taken.length > 0) result += `,"events":[${taken.join(',')}]`;
  if (run.endJson !== null && taken.length === pending.length) result += `,"end":${run.endJson}`;
  return `${result}}`;
}
