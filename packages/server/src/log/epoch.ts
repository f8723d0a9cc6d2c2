/**
 * A short random tag that tells this log's ids from those of another log or
 * an earlier process: 12 characters of `[0-9a-z]`, so it fits in any id format.
 */
export function newEpoch(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(bytes, (b) => b.toString(36).padStart(2, '0')).join('');
}
