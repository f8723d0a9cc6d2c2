export interface RetryOptions {
  /** Ceiling of the first retry's delay, in ms. Default 250. */
  initialDelayMs?: number;
  /** Ceiling of any retry's delay, in ms. Default 30 000. */
  maxDelayMs?: number;
}

/** Exponential backoff with full jitter: a random delay up to the attempt's ceiling. */
export function backoffDelay(attempt: number, opts: RetryOptions, retryAfterMs?: number): number {
  const ceiling = Math.min(opts.maxDelayMs ?? 30_000, (opts.initialDelayMs ?? 250) * 2 ** Math.max(0, attempt - 1));
  const delay = Math.random() * ceiling;
  return retryAfterMs === undefined ? delay : Math.max(retryAfterMs, delay);
}

/** `Retry-After` in seconds or as an HTTP date, in ms from now. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** Consecutive stale answers after which the client id is taken for lost and a fresh one is used. */
export const STALE_ANSWERS_PER_CLIENT = 3;
/** Ceiling of the pause after a stale answer: a lockout should end in about a second, not after a full backoff. */
export const STALE_MAX_DELAY_MS = 1_000;

export interface StaleStep {
  /** The subscriptions should show `connecting`. */
  failing: boolean;
  /** Continue under a fresh client id. */
  newClient: boolean;
  /** Pause before the next poll, in ms. */
  delayMs: number;
}

/**
 * What the `count`-th stale answer in a row calls for. One is normal (a
 * re-poll raced an older poll); a run of them means someone else polls with
 * this client id and higher numbers, so every poll of ours is ignored: the
 * way out is a new id, whose session the server resumes from the cursors.
 */
export function staleStep(count: number, retry: RetryOptions): StaleStep {
  const newClient = count % STALE_ANSWERS_PER_CLIENT === 0;
  const maxDelayMs = Math.min(retry.maxDelayMs ?? 30_000, STALE_MAX_DELAY_MS);
  return {
    failing: count >= 2,
    newClient,
    // Nothing is stale about a fresh id, so it is tried at once; the count goes on, so a server that
    // calls every poll stale still gets at most a few polls a second.
    delayMs: newClient ? 0 : backoffDelay(count, { ...retry, maxDelayMs }),
  };
}
