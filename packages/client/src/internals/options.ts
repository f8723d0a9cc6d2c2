import type { TRPCCombinedDataTransformer } from '@trpc/server';
import { DEFAULT_HOLD_MS } from '@trpc-longpoll/protocol';
import type { RetryOptions } from './backoff';
import type { PollOutcomeInfo } from './outcomes';

/** A value, or a function that gives it; functions are called for every poll, so rotating credentials work. */
export type MaybeLazy<T> = T | (() => T | Promise<T>);

export async function evaluate<T>(value: MaybeLazy<T>): Promise<T> {
  return typeof value === 'function' ? await (value as () => T | Promise<T>)() : value;
}

/** The options a poll is made of, as `longPollLink` takes them. */
export interface PollOptions {
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
  /**
   * Adds `lp_affinity=<token>` to the poll URL: a value that stays the same for the client's
   * life (across tabs when they share a poll) and tells nothing of its id, for a load
   * balancer to hash on, so each client's polls reach one instance (docs/scaling.md,
   * "Affinity"). Default true; false leaves the URL as given.
   */
  affinity?: boolean;
  /**
   * Told what became of every poll: answered (with its events), failed and why (network,
   * watchdog, HTTP status, an answer that is not the protocol's) with the backoff chosen, or
   * stale. For connection health in the UI or the logs; a hook that throws is logged and
   * polling goes on. With `shareAcrossTabs`, the leader tab's hook hears the shared poll.
   */
  onPollOutcome?: (outcome: PollOutcomeInfo) => void;
}

type Defaulted = 'holdMs' | 'watchdogMarginMs' | 'changeDelayMs' | 'retry' | 'affinity';

/** `PollOptions` as the poll loop uses them: every default filled in, the transformer resolved. */
export type PollerOptions = Omit<PollOptions, Defaulted> &
  Required<Pick<PollOptions, Defaulted>> & { transformer: TRPCCombinedDataTransformer };

/** Picks the poll's options out of the link's, so nothing else of the link's (such as `shareAcrossTabs`) travels with them. */
export function pollerOptions(opts: PollOptions, transformer: TRPCCombinedDataTransformer): PollerOptions {
  return {
    url: opts.url,
    headers: opts.headers,
    connectionParams: opts.connectionParams,
    fetch: opts.fetch,
    transformer,
    holdMs: opts.holdMs ?? DEFAULT_HOLD_MS,
    watchdogMarginMs: opts.watchdogMarginMs ?? 10_000,
    changeDelayMs: opts.changeDelayMs ?? 2,
    retry: opts.retry ?? {},
    affinity: opts.affinity ?? true,
    onPollOutcome: opts.onPollOutcome,
  };
}
