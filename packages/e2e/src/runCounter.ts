/**
 * Counts a test router's procedure runs: `starts` ever begun, `live` running
 * now. `counted(body)` wraps a generator so its `finally` is what brings `live`
 * down, which is how a test sees that a procedure really ended.
 */
export function runCounter() {
  const stats = { starts: 0, live: 0 };
  const counted = async function* <T>(body: () => AsyncGenerator<T>): AsyncGenerator<T> {
    stats.starts++;
    stats.live++;
    try {
      yield* body();
    } finally {
      stats.live--;
    }
  };
  return { stats, counted };
}
