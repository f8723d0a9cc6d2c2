/** What the server process and the load generator agree on. */

export const TRANSPORTS = ['longpoll', 'sse', 'ws', 'floor'] as const;
export type Transport = (typeof TRANSPORTS)[number];

export const TRANSPORT_LABELS: Record<Transport, string> = {
  longpoll: 'longPollLink',
  sse: 'httpSubscriptionLink (SSE)',
  ws: 'wsLink (WebSocket)',
  floor: 'floor (bare node:http)',
};

/** One published event, as every transport carries it. */
export interface BenchEvent {
  /** Position in its topic, from 1. */
  n: number;
  /** When it was published, on the server's clock (`now()`). */
  t: number;
  /** Padding, so events have a realistic size. */
  p: string;
  /** With `--superjson`: a Date, as apps send them, which superjson must encode (plain JSON could not). */
  d?: Date;
}

/** `pnpm bench --superjson`: every tRPC transport runs with superjson and events carry a Date (the floor stays plain JSON). */
export const SUPERJSON = process.env.BENCH_SUPERJSON === '1';

/** Where an event comes from: the in-process hub, the Redis event log (scenario 6), or the log of a log scenario. */
export type Source = 'hub' | 'redis' | 'log';

/** The event logs the log scenarios compare. */
export const LOG_KINDS = ['memory', 'redis', 'postgres', 'upstash'] as const;
export type LogKind = (typeof LOG_KINDS)[number];

/**
 * Milliseconds on a clock that processes on one machine share:
 * `timeOrigin` is the wall-clock instant the process started, `now()` is
 * monotonic from there. The load generator still measures the offset (see `clock.ts`).
 */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export interface PublishRequest {
  source: Source;
  topics: string[];
  /** Events per topic. */
  count: number;
  /** Events per topic published in one go. */
  burst: number;
  /** Pause between bursts; 0 yields to the event loop only (setImmediate). */
  intervalMs: number;
  /** Characters of padding per event. */
  pad: number;
}

export interface ServerStats {
  rss: number;
  heapUsed: number;
  /** Process CPU time, user + system, in µs. */
  cpuUs: number;
  /** Open TCP connections per transport server. */
  sockets: Partial<Record<Transport, number>>;
  /** Requests answered (responses finished or closed) per transport server. */
  answered: Partial<Record<Transport, number>>;
  /** Requests in progress (for long-polls: held polls) per transport server. */
  inflight: Partial<Record<Transport, number>>;
  /** Live subscriptions on the in-process hub, by topic. */
  subscribers: Record<string, number>;
  /** Live subscriptions that read the Redis log, by topic. */
  redisSubscribers: Record<string, number>;
  /** Log scenarios: live subscriptions reading the log, by topic, and round trips to its store so far. */
  logSubscribers: Record<string, number>;
  logQueries: number;
}

export interface ServerReady {
  type: 'ready';
  ports: Partial<Record<Transport, number>>;
  control: number;
  redis: 'ok' | 'unavailable';
  redisNote?: string;
  /** Log scenarios: whether the log asked for could be opened. */
  log?: 'ok' | 'unavailable';
  logNote?: string;
}

export interface ServerArgs {
  transports: Transport[];
  /** Longest hold for the long-poll servers, in ms. */
  holdMs: number;
  /** Further options of the long-poll handler (`--longpoll-options '{…}'`), to try a setting against the defaults. */
  longPoll?: Record<string, number>;
  /** Log scenarios: the event log to open. */
  log?: LogKind;
}
