import type { AnyTRPCRouter } from '@trpc/server';
import { DEFAULT_HOLD_MS } from '@trpc-longpoll/protocol';

/** Options every adapter takes, besides its own `createContext`. */
export interface LongPollOptions<TRouter extends AnyTRPCRouter, TRequest = unknown> {
  router: TRouter;
  /** Called with every error a subscription produces, as in tRPC's adapters. */
  onError?: (opts: {
    error: import('@trpc/server').TRPCError;
    type: 'subscription';
    path: string | undefined;
    input: unknown;
    ctx: import('@trpc/server').inferRouterContext<TRouter> | undefined;
    req: TRequest;
  }) => void;
  /** Longest time a poll is held, in ms; clients may ask for less. Default 20 000 (under API Gateway's 29 s). */
  holdMs?: number;
  /** Wait this long after the first news before answering, so a burst travels in one response. Default 0: the end of the current event-loop turn. */
  coalesceMs?: number;
  /** A client that has not polled for this long loses its server-side state. Default 2 × `holdMs`. */
  idleTimeoutMs?: number;
  /**
   * Unacknowledged events kept per subscription; beyond it the procedure's iterator is not pulled.
   * Default 2 × `maxBatchEvents` (2 000): the procedure keeps producing while a full batch is on its way.
   */
  maxBufferedEvents?: number;
  /** Events in one response at most. Default 1 000. */
  maxBatchEvents?: number;
  /** Bytes of event data in one response at most (one event is always sent). Default 1 MiB. */
  maxBatchBytes?: number;
  /** Subscriptions one poll may carry. Default 500. */
  maxSubscriptionsPerPoll?: number;
  /** Polls held at once by this handler; beyond it polls get 503 with Retry-After. Default 50 000. */
  maxHeldPolls?: number;
  /** Largest poll body accepted, in bytes; larger ones get 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /**
   * Who the poll comes from, derived from the context `createContext` made
   * for it (a user or session id). Server-side state is keyed by identity and
   * client id, so a poll from another identity never reads or cancels it.
   * Without it, state is keyed by the client id alone (128 random bits).
   */
  identify?: (opts: { ctx: import('@trpc/server').inferRouterContext<TRouter> }) => string | null | undefined | Promise<string | null | undefined>;
}

export type ResolvedOptions = Required<Omit<LongPollOptions<AnyTRPCRouter>, 'router' | 'onError' | 'identify'>>;

export function resolveOptions(opts: LongPollOptions<AnyTRPCRouter, any>): ResolvedOptions {
  const holdMs = opts.holdMs ?? DEFAULT_HOLD_MS;
  const positive = (name: string, value: number) => {
    if (!(Number.isFinite(value) && value >= 0)) throw new TypeError(`trpc-longpoll: ${name} must be a non-negative number`);
    return value;
  };
  return {
    holdMs: positive('holdMs', holdMs),
    coalesceMs: positive('coalesceMs', opts.coalesceMs ?? 0),
    idleTimeoutMs: positive('idleTimeoutMs', opts.idleTimeoutMs ?? 2 * holdMs),
    maxBufferedEvents: positive('maxBufferedEvents', opts.maxBufferedEvents ?? 2 * (opts.maxBatchEvents ?? 1_000)),
    maxBatchEvents: positive('maxBatchEvents', opts.maxBatchEvents ?? 1_000),
    maxBatchBytes: positive('maxBatchBytes', opts.maxBatchBytes ?? 1024 * 1024),
    maxSubscriptionsPerPoll: positive('maxSubscriptionsPerPoll', opts.maxSubscriptionsPerPoll ?? 500),
    maxHeldPolls: positive('maxHeldPolls', opts.maxHeldPolls ?? 50_000),
    maxBodyBytes: positive('maxBodyBytes', opts.maxBodyBytes ?? 1024 * 1024),
  };
}
