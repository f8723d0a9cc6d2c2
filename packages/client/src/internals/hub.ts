import type { Operation } from '@trpc/client';
import type { SubscriptionObserver } from './subscription';

/** Where `longPollLink` puts its subscriptions: a poll of its own (`LocalHub`), or one the browser's tabs share (`SharedHub`). */
export interface SubscriptionHub {
  /** Starts carrying the subscription; the returned function stops it, emitting nothing more. */
  add(op: Operation, observer: SubscriptionObserver): () => void;
}
