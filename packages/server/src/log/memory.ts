import { tracked, type TrackedEnvelope } from '@trpc/server';
import { waitUntil } from '@trpc-longpoll/protocol';
import { bookmark, claimBookmarks } from './bookmarks';
import { newEpoch } from './epoch';
import { EventLogGoneError, EventLogResetError } from './errors';
import type { ClusterChannel, EventLog, EventLogSubscribeOptions, EventLogTopics, TopicName } from './types';

export interface MemoryEventLogOptions {
  /** Events kept per topic; publishing more drops the oldest. Default 1 000. */
  maxEventsPerTopic?: number;
  /** Events older than this (ms) are dropped. Default: no age limit. */
  maxAgeMs?: number;
  /**
   * A cursor ahead of the log waits this long (ms) for the log to catch up
   * before the subscription fails with `reset`. Default 5 000.
   */
  resetGraceMs?: number;
  /**
   * Under a long-poll transport that takes bookmarks, a subscription repeats
   * its position at most this often (ms), so a procedure that filters events
   * still moves its client's cursor. Default 30 000.
   */
  bookmarkIntervalMs?: number;
}

interface StoredEvent {
  n: number;
  at: number;
  data: unknown;
}

/** One topic's retained events, numbered 1, 2, 3… without gaps. */
class TopicLog {
  private events: StoredEvent[] = [];
  /** Index in `events` of the oldest retained event; trimming moves it instead of shifting the array. */
  private head = 0;
  /** Number of the newest event ever published (0: none). */
  lastN = 0;
  private readonly waiters = new Set<() => void>();

  /** Number of the oldest retained event; `lastN + 1` when none is. */
  get firstN(): number {
    return this.head < this.events.length ? this.events[this.head]!.n : this.lastN + 1;
  }

  append(data: unknown, at: number): number {
    this.lastN++;
    this.events.push({ n: this.lastN, at, data });
    return this.lastN;
  }

  get(n: number): StoredEvent {
    return this.events[this.head + (n - this.firstN)]!;
  }

  trim(maxEvents: number, maxAgeMs: number | undefined, now: number): void {
    let head = this.head;
    const end = this.events.length;
    if (end - head > maxEvents) head = end - maxEvents;
    if (maxAgeMs !== undefined) {
      while (head < end && now - this.events[head]!.at > maxAgeMs) head++;
    }
    if (head === this.head) return;
    this.head = head;
    if (this.head > 64 && this.head * 2 > this.events.length) {
      this.events = this.events.slice(this.head);
      this.head = 0;
    }
  }

  wake(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const waiter of waiters) waiter();
  }

  /**
   * Resolves on the next publish to the topic, an abort, close, or after `ms`.
   * `close()` wakes every topic's waiters, so none listens on the shared closing
   * signal: thousands of waiting subscribers would pile listeners onto it.
   */
  nextChange(signal: AbortSignal | undefined, ms?: number): Promise<void> {
    return waitUntil({
      signal,
      ms,
      register: (wake) => {
        this.waiters.add(wake);
        return () => this.waiters.delete(wake);
      },
    });
  }
}

/** One log's topics, its epoch and its settings: what a subscription reads with. */
class MemoryTopics {
  private epochValue: string | null = null;

  /**
   * Drawn on first use, not when the log is made: Cloudflare Workers forbid random
   * numbers in a module's global scope, where apps create their log.
   */
  get epoch(): string {
    return (this.epochValue ??= newEpoch());
  }
  readonly closing = new AbortController();
  private readonly logs = new Map<string, TopicLog>();

  constructor(
    readonly maxEvents: number,
    readonly maxAgeMs: number | undefined,
    readonly resetGraceMs: number,
    readonly bookmarkIntervalMs: number,
  ) {}

  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  log(topic: string): TopicLog {
    let log = this.logs.get(topic);
    if (!log) this.logs.set(topic, (log = new TopicLog()));
    return log;
  }

  idOf(n: number): string {
    return `${this.epoch}:${n}`;
  }

  /** The event number in an id this log minted, or null for anything else. */
  parse(id: string): number | null {
    const colon = id.indexOf(':');
    if (colon < 0 || id.slice(0, colon) !== this.epoch) return null;
    const n = Number(id.slice(colon + 1));
    return Number.isSafeInteger(n) && n >= 0 ? n : null;
  }

  close(): void {
    this.closing.abort();
    for (const log of this.logs.values()) log.wake();
  }
}

/** Where a subscription starts: after `lastEventId`, once the log has caught up with it, or at the newest event. */
async function startPosition(topics: MemoryTopics, topic: string, log: TopicLog, options: EventLogSubscribeOptions): Promise<number> {
  const { signal } = options;
  if (options.lastEventId == null) return log.lastN;
  const cursor = options.lastEventId;
  const n = topics.parse(cursor);
  if (n === null) throw new EventLogResetError({ topic, cursor });
  const deadline = Date.now() + topics.resetGraceMs;
  while (n > log.lastN && Date.now() < deadline && !signal?.aborted && !topics.closed) {
    await log.nextChange(signal, deadline - Date.now());
  }
  if (n > log.lastN && !signal?.aborted && !topics.closed) throw new EventLogResetError({ topic, cursor });
  return n;
}

async function* follow(topics: MemoryTopics, topic: string, options: EventLogSubscribeOptions): AsyncGenerator<TrackedEnvelope<any>> {
  const { signal } = options;
  // Before any await: the server holds the subscription's announcement until its position is out.
  const claim = claimBookmarks(signal);
  const log = topics.log(topic);
  // With a lastEventId the client has its position already: nothing to wait for.
  if (options.lastEventId != null) claim?.settle();
  let position = await startPosition(topics, topic, log, options);
  let bookmarked = -1;
  let bookmarkedAt = Date.now();
  if (claim && options.lastEventId == null) {
    // "From now" is pinned here: a run started later elsewhere replays from this id.
    bookmarked = position;
    yield bookmark(topics.idOf(position));
    claim.settle();
  }
  for (;;) {
    if (signal?.aborted) return;
    if (topics.closed) throw new Error('The event log was closed');
    if (claim && position !== bookmarked && Date.now() - bookmarkedAt >= topics.bookmarkIntervalMs) {
      bookmarked = position;
      bookmarkedAt = Date.now();
      yield bookmark(topics.idOf(position));
    }
    log.trim(topics.maxEvents, topics.maxAgeMs, Date.now());
    if (position < log.firstN - 1) throw new EventLogGoneError({ topic, cursor: topics.idOf(position) });
    if (position < log.lastN) {
      const event = log.get(position + 1);
      position = event.n;
      yield tracked(topics.idOf(event.n), event.data);
      continue;
    }
    // Checked and registered in one synchronous step: no publish can fall in between.
    await log.nextChange(signal, claim ? topics.bookmarkIntervalMs : undefined);
  }
}

/**
 * The embedded event log: events live in this process, each topic keeps the
 * newest `maxEventsPerTopic`. Ids carry a random epoch, so a cursor from
 * before a restart (or from another instance) is a `reset`, never a silent
 * jump. For several instances use `@trpc-longpoll/redis`.
 */
export function createMemoryEventLog<TTopics extends EventLogTopics>(
  opts: MemoryEventLogOptions = {},
): EventLog<TTopics> {
  const maxEvents = opts.maxEventsPerTopic ?? 1_000;
  if (!(Number.isInteger(maxEvents) && maxEvents >= 1)) throw new TypeError('maxEventsPerTopic must be a positive integer');
  const topics = new MemoryTopics(maxEvents, opts.maxAgeMs, opts.resetGraceMs ?? 5_000, opts.bookmarkIntervalMs ?? 30_000);

  return {
    async publish(topic, data) {
      if (topics.closed) throw new Error('The event log is closed');
      const log = topics.log(topic);
      const now = Date.now();
      const n = log.append(data, now);
      log.trim(topics.maxEvents, topics.maxAgeMs, now);
      log.wake();
      return topics.idOf(n);
    },
    async head(topic) {
      return topics.idOf(topics.log(topic).lastN);
    },
    subscribe<K extends TopicName<TTopics>>(topic: K, options: EventLogSubscribeOptions = {}) {
      if (topics.closed) throw new Error('The event log is closed');
      return follow(topics, topic, options) as AsyncIterable<TrackedEnvelope<TTopics[K]>>;
    },
    cluster: localCluster(topics.closing.signal),
    async close() {
      topics.close();
    },
  };
}

/**
 * The memory log's `cluster` channel reaches the handlers of this process that
 * share the log object (several handlers in one process, as tests run them).
 * Delivery is asynchronous, as over a network: no sender waits on a receiver.
 */
function localCluster(closing: AbortSignal): ClusterChannel {
  const listeners = new Set<(message: string) => void>();
  return {
    send(message) {
      if (closing.aborted) return;
      queueMicrotask(() => {
        for (const listener of listeners) listener(message);
      });
    },
    listen(onMessage) {
      listeners.add(onMessage);
      return () => {
        listeners.delete(onMessage);
      };
    },
  };
}
