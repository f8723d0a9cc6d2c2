import type { PollOutcome } from './poller';
import type { Subscription } from './subscription';

/** Hands one poll's outcome to the subscriptions it carried, each with its key in `results`. */
export function dispatch(outcome: PollOutcome, carried: Array<[sub: Subscription, key: string]>): void {
  for (const [sub, key] of carried) {
    if (outcome.kind === 'answer') sub.answered(outcome.results[key]);
    else if (outcome.kind === 'transient') sub.transient(outcome.error);
    else sub.fail(outcome.error);
  }
}
