import type { TRPCLink } from '@trpc/client';
import type { AnyTRPCRouter, inferTRPCClientTypes } from '@trpc/server';
import { observable } from '@trpc/server/observable';
import type { LockManagerLike } from './internals/crossTab/messages';
import { SharedHub } from './internals/crossTab/sharedHub';
import type { SubscriptionHub } from './internals/hub';
import { LocalHub } from './internals/localHub';
import { pollerOptions, type PollOptions, type PollerOptions } from './internals/options';
import { getTransformer, type DataTransformerOptions, type TransformerOptions } from './internals/transformer';

export interface ShareAcrossTabsOptions {
  /**
   * Tabs whose links have the same name share a poll. Default: the `url`
   * when it is a string (so each endpoint of an origin gets one poll), else `"default"`.
   */
  name?: string;
}

/** Hooks for tests outside a browser; not part of the public API. */
interface InternalShareOptions extends ShareAcrossTabsOptions {
  locks?: LockManagerLike;
  closeSignal?: AbortSignal;
  handoverMs?: number;
}

export type LongPollLinkOptions<TRouter extends AnyTRPCRouter> = PollOptions & {
  /**
   * Let all tabs of this origin share ONE held poll (default `false`). Over
   * HTTP/1.1 a browser opens at most 6 connections per host, and every tab's
   * held poll keeps one busy, so with many tabs the later ones stall. With
   * this on, the tabs elect a leader with a Web Lock; the leader holds the one
   * poll for every tab's subscriptions and passes each tab its results over a
   * `BroadcastChannel`. When the leader tab closes, another tab takes over the
   * same server session without losing or repeating events. Envelopes, cursor
   * errors and retries are the same as without sharing.
   *
   * All tabs sharing a name should use the same options: the leader's `url`,
   * `headers`, `connectionParams`, `fetch` and timing options make the poll.
   * Active only where `BroadcastChannel` and `navigator.locks` exist (secure
   * contexts); elsewhere every client polls on its own, as with `false`.
   */
  shareAcrossTabs?: boolean | ShareAcrossTabsOptions;
} & TransformerOptions<inferTRPCClientTypes<TRouter>>;

/**
 * A terminating link that runs every subscription of a tRPC client over one
 * held HTTP request. Route subscriptions to it with `splitLink`.
 */
export function longPollLink<TRouter extends AnyTRPCRouter>(opts: LongPollLinkOptions<TRouter>): TRPCLink<TRouter> {
  const transformer = getTransformer(opts.transformer as DataTransformerOptions | undefined);
  return () => {
    // One hub per tRPC client: its subscriptions share a poll (its own, or with shareAcrossTabs the browser's).
    const hub = createHub(opts, pollerOptions(opts, transformer));
    return ({ op }) =>
      observable((observer) => {
        if (op.type !== 'subscription') {
          throw new Error(
            `longPollLink only carries subscriptions, but "${op.path}" is a ${op.type}; route it to another link with splitLink`,
          );
        }
        if (op.signal?.aborted) {
          observer.complete();
          return;
        }
        observer.next({ result: { type: 'state', state: 'connecting', error: null } });
        const remove = hub.add(op, observer);
        const onAbort = () => {
          remove();
          observer.complete();
        };
        op.signal?.addEventListener('abort', onAbort, { once: true });
        return () => {
          op.signal?.removeEventListener('abort', onAbort);
          remove();
        };
      });
  };
}

function createHub(opts: Pick<PollOptions, 'url'> & { shareAcrossTabs?: boolean | ShareAcrossTabsOptions }, pollerOpts: PollerOptions): SubscriptionHub {
  const share = opts.shareAcrossTabs;
  if (share) {
    const internal: InternalShareOptions = share === true ? {} : share;
    const locks = internal.locks ?? (typeof navigator === 'undefined' ? undefined : (navigator.locks as LockManagerLike | undefined));
    const name = internal.name ?? (typeof opts.url === 'string' ? opts.url : 'default');
    if (locks && typeof BroadcastChannel === 'function') {
      return new SharedHub({
        ...pollerOpts,
        name: `trpc-longpoll:${name}`,
        locks,
        ...(internal.closeSignal ? { closeSignal: internal.closeSignal } : {}),
        ...(internal.handoverMs !== undefined ? { handoverMs: internal.handoverMs } : {}),
      });
    }
  }
  return new LocalHub(pollerOpts);
}
