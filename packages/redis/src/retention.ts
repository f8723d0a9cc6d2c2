/** How much of each topic's stream is kept; shared by every log on this format. */
export interface RedisEventLogRetention {
  /** Entries kept per topic (`XADD … MAXLEN`). Default 10 000 unless `maxAgeMs` is set. */
  maxLen?: number;
  /** Entries older than this (ms, by the Redis clock) are dropped on the next publish (`XTRIM … MINID`). */
  maxAgeMs?: number;
  /**
   * Trim exactly (`=`) instead of letting Redis trim whole internal nodes (`~`,
   * cheaper, keeps up to ~100 more entries). Default false.
   */
  exact?: boolean;
}

/** The publish script's trim arguments (max length, max age, exactness), checked; a bad retention is a `TypeError`. */
export function trimArgsOf(retention: RedisEventLogRetention = {}): string[] {
  const maxLen = retention.maxLen ?? (retention.maxAgeMs === undefined ? 10_000 : undefined);
  if (maxLen !== undefined && !(Number.isInteger(maxLen) && maxLen >= 1)) throw new TypeError('retention.maxLen must be a positive integer');
  if (retention.maxAgeMs !== undefined && !(retention.maxAgeMs > 0)) throw new TypeError('retention.maxAgeMs must be positive');
  return [maxLen === undefined ? '' : String(maxLen), retention.maxAgeMs === undefined ? '' : String(Math.ceil(retention.maxAgeMs)), retention.exact ? '=' : '~'];
}

/** How events are stored unless a log is given a serializer: JSON. */
export const jsonSerializer = { serialize: (value: unknown) => JSON.stringify(value), deserialize: (text: string) => JSON.parse(text) as unknown };
