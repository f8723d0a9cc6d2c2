import type { TRPCLink } from '@trpc/client';
import type { AnyTRPCRouter, inferTRPCClientTypes } from '@trpc/server';
import { observable } from '@trpc/server/observable';
import { DEFAULT_HOLD_MS } from '@trpc-longpoll/protocol';
import type { RetryOptions } from './internals/backoff';
import { Poller } from './internals/poller';
import { getTransformer, type DataTransformerOptions, type TransformerOptions } from './internals/transformer';

type MaybeLazy<T> = T | (() => T | Promise<T>);

export type LongPollLinkOptions<TRouter extends AnyTRPCRouter> = {
  /** The tRPC endpoint, such as `/api/trpc` (the same URL `httpBatchLink` uses). Polls are POSTed to it. */
  url: MaybeLazy<string>;
  /** Headers for every poll; a function is called before each one, so a rotating token stays fresh. */
  headers?: MaybeLazy<Record<string, string>>;
  /** Sent with every poll and given to `createContext` as `info.connectionParams`. */
  connectionParams?: MaybeLazy<Record<string, string> | null | undefined>;
  /** A `fetch` to use instead of the global one. */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** Longest hold to ask the server for, in ms. Default 20 000; the server may cap it. */
  holdMs?: number;
  /** A poll with no answer after hold + hold/16 + this margin is aborted and retried. Default 10 000. */
  watchdogMarginMs?: number;
  /** Subscription changes within this window share one re-poll. Default 2. */
  changeDelayMs?: number;
  /** Backoff after transient failures (full jitter; `Retry-After` is honoured). */
  retry?: RetryOptions;
} & TransformerOptions<inferTRPCClientTypes<TRouter>>;

/**
 * A terminating link that runs every subscription of a tRPC client over one
 * held HTTP request. Route subscriptions to it with `splitLink`.
 */
export function longPollLink<TRouter extends AnyTRPCRouter>(opts: LongPollLinkOptions<TRouter>): TRPCLink<TRouter> {
  const transformer = getTransformer(opts.transformer as DataTransformerOptions | undefined);
  return () => {
    // One poller per tRPC client: every subscription of the client shares its poll.
    const poller = new Poller({
      url: opts.url,
      headers: opts.headers,
      connectionParams: opts.connectionParams,
      fetch: opts.fetch,
      transformer,
      holdMs: opts.holdMs ?? DEFAULT_HOLD_MS,
      watchdogMarginMs: opts.watchdogMarginMs ?? 10_000,
      changeDelayMs: opts.changeDelayMs ?? 2,
      retry: opts.retry ?? {},
    });
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
        const remove = poller.add(op, observer);
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
