import type { Operation } from '@trpc/client';
import { dispatch } from './dispatch';
import type { SubscriptionHub } from './hub';
import type { PollerOptions } from './options';
import { Poller } from './poller';
import { Subscription, type SubscriptionObserver } from './subscription';

/** Every subscription of one tRPC client on a poll of its own. */
export class LocalHub implements SubscriptionHub {
  private readonly subs = new Map<string, Subscription>();
  private readonly poller: Poller;
  private nextKey = 0;

  constructor(private readonly opts: PollerOptions) {
    this.poller = new Poller({
      ...opts,
      deliver: (outcome, entries) => dispatch(outcome, entries.map((entry) => [entry.key, entry.key]), this.subs),
    });
  }

  add(op: Operation, observer: SubscriptionObserver): () => void {
    const key = (this.nextKey++).toString(36);
    const input = op.input === undefined ? undefined : this.opts.transformer.input.serialize(op.input);
    const drop = () => {
      if (this.subs.delete(key)) this.poller.remove(key);
    };
    const sub = new Subscription(key, op.path, input, observer, this.opts.transformer, drop);
    this.subs.set(key, sub);
    this.poller.add({ key, path: op.path, input });
    return () => {
      sub.close();
      drop();
    };
  }
}
