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
  /**
   * Bytes of unacknowledged event JSON kept per subscription (each event counts its JSON plus
   * 64 bytes of bookkeeping); at or beyond it the iterator is not pulled. Default 1 MiB: room for
   * 2 × `maxBatchEvents` events of a few hundred bytes, so a fast producer still fills whole batches.
   */
  maxBufferedBytes?: number;
  /** Events in one response at most. Default 1 000. */
  maxBatchEvents?: number;
  /** Bytes of event data in one response at most (one event always goes, however large). Default 1 MiB. */
  maxBatchBytes?: number;
  /** Largest one event's JSON may be; a procedure that yields a larger one ends with `PAYLOAD_TOO_LARGE`. Default 1 MiB. */
  maxEventBytes?: number;
  /** Subscriptions one poll may carry. Default 100. */
  maxSubscriptionsPerPoll?: number;
  /**
   * Polls in progress at once — held, or with their body still arriving — in this handler;
   * beyond it polls get `503` with `Retry-After`. Default 10 000.
   */
  maxHeldPolls?: number;
  /** Largest poll body accepted, in bytes; larger ones get `413`. Default 1 MiB. */
  maxBodyBytes?: number;
  /** A poll body must have arrived this long after the request began, in ms, or it gets `408`. Default 10 000. */
  bodyTimeoutMs?: number;
  /** Clients (sessions) the process keeps state for; a new one beyond it gets `503` with `Retry-After`. Default 10 000. */
  maxSessions?: number;
  /** Procedures running at once in the process; a subscription beyond it is refused with `SERVICE_UNAVAILABLE` (retried). Default 10 000. */
  maxRuns?: number;
  /** Unacknowledged event bytes over all runs; at or beyond it no run pulls its iterator. Default 64 MiB. */
  maxTotalBufferedBytes?: number;
  /** Clients (sessions) one identity may have; a new one beyond it gets `429` with `Retry-After`. Default 32. */
  maxSessionsPerIdentity?: number;
  /** Procedures one identity may have running; a subscription beyond it is refused with `TOO_MANY_REQUESTS` (retried). Default 200. */
  maxRunsPerIdentity?: number;
  /** Deepest nesting of a subscription's serialized input; deeper ones are refused with `BAD_REQUEST`. Default 32. */
  maxInputDepth?: number;
  /** Largest serialized input of one subscription, in bytes of JSON; larger ones are refused with `PAYLOAD_TOO_LARGE`. Default 64 KiB. */
  maxInputBytes?: number;
  /**
   * Who the poll comes from, derived from the context `createContext` made
   * for it (a user or session id). Server-side state is keyed by identity and
   * client id, so a poll from another identity never reads or cancels it.
   * Without it, state is keyed by the client id alone (128 random bits).
   */
  identify?: (opts: { ctx: import('@trpc/server').inferRouterContext<TRouter> }) => string | null | undefined | Promise<string | null | undefined>;
  /**
   * Who an anonymous poll (no `identify`, or `identify` returned nothing) counts against for the
   * per-identity budgets, such as the client's address: `({ req }) => req.socket.remoteAddress`.
   * Behind a proxy, use the address the proxy saw, not a header the client can write (see
   * docs/deploying.md, "Client addresses"). Without it, an anonymous poll counts against its client id.
   */
  budgetKey?: (opts: { ctx: import('@trpc/server').inferRouterContext<TRouter>; req: TRequest }) => string | null | undefined;
  /**
   * A channel shared by every instance behind the balancer, such as a shared event log's
   * (`log.cluster`). When a client's poll reaches this instance after another one, or it
   * leaves, the others stop its procedures at once instead of at idle expiry.
   */
  cluster?: import('../log/types').ClusterChannel;
  /**
   * OpenTelemetry: the app's `Meter` gets the counters and gauges of `stats()` and two poll
   * histograms, its `Tracer` a span per poll and per procedure run started (docs/observability.md).
   * Without it nothing is measured and `@opentelemetry/api` is never loaded.
   */
  telemetry?: import('./telemetry').LongPollTelemetry;
}

export type ResolvedOptions = Required<Omit<LongPollOptions<AnyTRPCRouter>, 'router' | 'onError' | 'identify' | 'budgetKey' | 'cluster' | 'telemetry'>>;

export function resolveOptions(opts: LongPollOptions<AnyTRPCRouter, any>): ResolvedOptions {
  const holdMs = opts.holdMs ?? DEFAULT_HOLD_MS;
  const positive = (name: string, value: number) => {
    if (!(Number.isFinite(value) && value >= 0)) throw new TypeError(`trpc-longpoll: ${name} must be a non-negative number`);
    return value;
  };
  const maxBatchEvents = opts.maxBatchEvents ?? 1_000;
  return {
    holdMs: positive('holdMs', holdMs),
    coalesceMs: positive('coalesceMs', opts.coalesceMs ?? 0),
    idleTimeoutMs: positive('idleTimeoutMs', opts.idleTimeoutMs ?? 2 * holdMs),
    maxBufferedEvents: positive('maxBufferedEvents', opts.maxBufferedEvents ?? 2 * maxBatchEvents),
    maxBufferedBytes: positive('maxBufferedBytes', opts.maxBufferedBytes ?? 1024 * 1024),
    maxBatchEvents: positive('maxBatchEvents', maxBatchEvents),
    maxBatchBytes: positive('maxBatchBytes', opts.maxBatchBytes ?? 1024 * 1024),
    maxEventBytes: positive('maxEventBytes', opts.maxEventBytes ?? 1024 * 1024),
    maxSubscriptionsPerPoll: positive('maxSubscriptionsPerPoll', opts.maxSubscriptionsPerPoll ?? 100),
    maxHeldPolls: positive('maxHeldPolls', opts.maxHeldPolls ?? 10_000),
    maxBodyBytes: positive('maxBodyBytes', opts.maxBodyBytes ?? 1024 * 1024),
    bodyTimeoutMs: positive('bodyTimeoutMs', opts.bodyTimeoutMs ?? 10_000),
    maxSessions: positive('maxSessions', opts.maxSessions ?? 10_000),
    maxRuns: positive('maxRuns', opts.maxRuns ?? 10_000),
    maxTotalBufferedBytes: positive('maxTotalBufferedBytes', opts.maxTotalBufferedBytes ?? 64 * 1024 * 1024),
    maxSessionsPerIdentity: positive('maxSessionsPerIdentity', opts.maxSessionsPerIdentity ?? 32),
    maxRunsPerIdentity: positive('maxRunsPerIdentity', opts.maxRunsPerIdentity ?? 200),
    maxInputDepth: positive('maxInputDepth', opts.maxInputDepth ?? 32),
    maxInputBytes: positive('maxInputBytes', opts.maxInputBytes ?? 64 * 1024),
  };
}
