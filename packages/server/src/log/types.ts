import type { TrackedEnvelope } from '@trpc/server';

/**
 * What each topic carries, such as `{ [K: `room:${string}`]: Message }`.
 * Keys may be template literal types, so one entry types a family of topics.
 */
export type EventLogTopics = Record<string, unknown>;

/** The topic names of a topic map. */
export type TopicName<TTopics extends EventLogTopics> = keyof TTopics & string;

export interface EventLogSubscribeOptions {
  /**
   * Id of the last event the subscriber has (what the procedure got as
   * `input.lastEventId`). Events after it are replayed before live ones.
   * `null`/`undefined`: only events published from now on.
   */
  lastEventId?: string | null;
  /** Ends the iteration; pass the procedure's `signal`. */
  signal?: AbortSignal;
}

/**
 * A per-topic, append-only log that subscription procedures yield from:
 *
 * ```ts
 * yield* log.subscribe(`room:${input.room}`, { lastEventId: input.lastEventId, signal });
 * ```
 *
 * Event ids are opaque strings; within a topic each is minted after the one
 * before. A subscription never skips silently: a cursor the log can no longer
 * serve ends the iteration with `EventLogGoneError` (older than retention) or
 * `EventLogResetError` (the log does not know it: flushed, restored, or
 * another log's id).
 */
export interface EventLog<TTopics extends EventLogTopics> {
  /** Appends an event and resolves with its id once it is stored. */
  publish<K extends TopicName<TTopics>>(topic: K, data: TTopics[K]): Promise<string>;
  /**
   * Id of the topic's newest event (or of its empty start). Subscribing with
   * it as `lastEventId` delivers exactly what is published after this call,
   * on any instance. Prefer it to subscribing without `lastEventId` behind a
   * load balancer: "from now" is fixed only when a procedure first runs, and
   * a client's first polls may reach several instances before an event
   * arrives. Return it with the initial data query, and after a `gone` or
   * `reset` reload both together.
   */
  head<K extends TopicName<TTopics>>(topic: K): Promise<string>;
  /** Replays what came after `lastEventId`, then follows new events until the signal aborts. */
  subscribe<K extends TopicName<TTopics>>(
    topic: K,
    opts?: EventLogSubscribeOptions,
  ): AsyncIterable<TrackedEnvelope<TTopics[K]>>;
  /** Ends every subscription and releases the log's resources. */
  close(): Promise<void>;
  /**
   * Messages between the instances that share this log, for the handler's
   * `cluster` option. The memory log's reaches only the handlers of its own process.
   */
  readonly cluster?: ClusterChannel;
}

/**
 * A best-effort broadcast between the server instances behind one balancer.
 * The handler uses it to drop a client's runs on every other instance when
 * the client polls elsewhere or leaves; a lost message only delays that
 * cleanup until idle expiry, never loses an event.
 */
export interface ClusterChannel {
  /** Sends to every listening instance, possibly this one too (receivers ignore their own). Never throws. */
  send(message: string): void;
  /** Calls `onMessage` with every message sent after it starts; returns a function that stops it. */
  listen(onMessage: (message: string) => void): () => void;
}
