import type { PollOutcome } from './poller';
import type { Subscription } from './subscription';

/**
 * Hands one poll's outcome to the subscriptions it carried: `carried` pairs
 * each one's key in `subs` with its key in the outcome's results. One that
 * went while the poll was out (or while an earlier one was handed its share)
 * gets nothing.
 */
export function dispatch(
  outcome: PollOutcome,
  carried: Iterable<[key: string, resultKey: string]>,
  subs: ReadonlyMap<string, Subscription>,
): void {
  for (const [key, resultKey] of carried) {
    const sub = subs.get(key);
    if (!sub) continue;
    if (outcome.kind === 'answer') sub.answered(outcome.results[resultKey]);
    else if (outcome.kind === 'transient') sub.transient(outcome.error);
    else sub.fail(outcome.error);
  }
}
