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
