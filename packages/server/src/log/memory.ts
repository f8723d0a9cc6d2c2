import { tracked, type TrackedEnvelope } from '@trpc/server';
import { EventLogGoneError, EventLogResetError } from './errors';
import type { EventLog, EventLogSubscribeOptions, EventLogTopics, TopicName } from './types';
import { newEpoch, waitForSignal } from './wait';

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
  readonly waiters = new Set<() => void>();

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
  const maxAgeMs = opts.maxAgeMs;
  const resetGraceMs = opts.resetGraceMs ?? 5_000;
  if (!(Number.isInteger(maxEvents) && maxEvents >= 1)) throw new TypeError('maxEventsPerTopic must be a positive integer');

  const epoch = newEpoch();
  const topics = new Map<string, TopicLog>();
  const closing = new AbortController();

  const topicLog = (topic: string): TopicLog => {
    let log = topics.get(topic);
    if (!log) topics.set(topic, (log = new TopicLog()));
    return log;
  };
  const idOf = (n: number) => `${epoch}:${n}`;
  /** The event number in an id this log minted, or null for anything else. */
  const parse = (id: string): number | null => {
    const colon = id.indexOf(':');
    if (colon < 0 || id.slice(0, colon) !== epoch) return null;
    const n = Number(id.slice(colon + 1));
    return Number.isSafeInteger(n) && n >= 0 ? n : null;
  };
  /**
   * Resolves on the next publish to the topic, an abort, close, or after `ms`.
   * `close()` wakes every topic's waiters, so none listens on the shared closing
   * signal: thousands of waiting subscribers would pile listeners onto it.
   */
  const nextChange = (log: TopicLog, signal: AbortSignal | undefined, ms?: number) =>
    waitForSignal([signal], ms, (wake) => {
      log.waiters.add(wake);
      return () => log.waiters.delete(wake);
    });

  async function* follow(topic: string, options: EventLogSubscribeOptions): AsyncGenerator<TrackedEnvelope<any>> {
    const { signal } = options;
    const log = topicLog(topic);
    let position: number;
    if (options.lastEventId == null) {
      position = log.lastN;
    } else {
      const cursor = options.lastEventId;
      const n = parse(cursor);
      if (n === null) throw new EventLogResetError({ topic, cursor });
      const deadline = Date.now() + resetGraceMs;
      while (n > log.lastN && Date.now() < deadline && !signal?.aborted && !closing.signal.aborted) {
        await nextChange(log, signal, deadline - Date.now());
      }
      if (signal?.aborted) return;
      if (n > log.lastN && !closing.signal.aborted) throw new EventLogResetError({ topic, cursor });
      position = n;
    }
    for (;;) {
      if (signal?.aborted) return;
      if (closing.signal.aborted) throw new Error('The event log was closed');
      log.trim(maxEvents, maxAgeMs, Date.now());
      if (position < log.firstN - 1) throw new EventLogGoneError({ topic, cursor: idOf(position) });
      if (position < log.lastN) {
        const event = log.get(position + 1);
        position = event.n;
        yield tracked(idOf(event.n), event.data);
        continue;
      }
      // Checked and registered in one synchronous step: no publish can fall in between.
      await nextChange(log, signal);
    }
  }

  return {
    async publish(topic, data) {
      if (closing.signal.aborted) throw new Error('The event log is closed');
      const log = topicLog(topic);
      const now = Date.now();
      const n = log.append(data, now);
      log.trim(maxEvents, maxAgeMs, now);
      log.wake();
      return idOf(n);
    },
    async head(topic) {
      return idOf(topicLog(topic).lastN);
    },
    subscribe<K extends TopicName<TTopics>>(topic: K, options: EventLogSubscribeOptions = {}) {
      if (closing.signal.aborted) throw new Error('The event log is closed');
      return follow(topic, options) as AsyncIterable<TrackedEnvelope<TTopics[K]>>;
    },
    async close() {
      closing.abort();
      for (const log of topics.values()) log.wake();
    },
  };
}
