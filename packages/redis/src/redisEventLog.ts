import { tracked, type TrackedEnvelope } from '@trpc/server';
import { waitUntil } from '@trpc-longpoll/protocol';
import {
  EventLogGoneError,
  EventLogResetError,
  bookmark,
  claimBookmarks,
  newEpoch,
  type ClusterChannel,
  type EventLog,
  type EventLogSubscribeOptions,
  type EventLogTopics,
  type TopicName,
} from '@trpc-longpoll/server';
import { Redis, type RedisOptions } from 'ioredis';
import { HEAD_SCRIPT, PUBLISH_SCRIPT, READ_SCRIPT } from './scripts';
import { ORIGIN, formatEventId, numberOf, parseEventId, type StreamPosition } from './streamIds';
import { jsonSerializer, trimArgsOf, type RedisEventLogRetention } from './retention';
import { StreamWaker } from './waker';

export interface RedisEventLogOptions {
  /**
   * An ioredis client (left open by `close()`), or a URL / options to
   * connect with (closed by `close()`). The log opens one more connection
   * from it for its shared blocking reader.
   */
  redis: Redis | string | RedisOptions;
  /** Prefix of every key the log writes. Default `trpc-longpoll:`. */
  prefix?: string;
  retention?: RedisEventLogRetention;
  /**
   * A cursor ahead of the log (Redis flushed, restored from an older
   * snapshot, or failed over to a replica that lags) waits this long (ms)
   * for the log to catch up before the subscription fails with `reset`.
   * Default 5 000.
   */
  resetGraceMs?: number;
  /** How data is stored. Default JSON; pass superjson (or similar) for Dates, Maps… */
  serializer?: { serialize: (value: unknown) => string; deserialize: (text: string) => unknown };
  /** Entries read per round trip while replaying. Default 100. */
  readBatch?: number;
  /** Longest `XREAD BLOCK` of the shared reader, in ms. Default 5 000. */
  blockMs?: number;
  /** A waiting subscription re-reads its stream at least this often (ms), whatever the reader reports. Default 15 000. */
  recheckMs?: number;
  /**
   * Under a long-poll transport that takes bookmarks, a subscription repeats
   * its position at most this often (ms), so a procedure that filters events
   * still moves its client's cursor. Default 30 000.
   */
  bookmarkIntervalMs?: number;
}

type Entry = [id: string, fields: string[]];
type ReadReply = [epoch: string | null, n: string | null, ms: string | null, entries: Entry[]];

interface ScriptedRedis extends Redis {
  trpcLongPollPublish(stream: string, meta: string, ...args: string[]): Promise<[string, string]>;
  trpcLongPollRead(stream: string, meta: string, start: string, count: number): Promise<ReadReply>;
  trpcLongPollHead(meta: string, epoch: string): Promise<[epoch: string, n: string, ms: string]>;
}


function fieldOf(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/**
 * An event log in Redis Streams, one stream per topic, so every instance of
 * a service sees the same events and any of them can answer any poll.
 */
export function createRedisEventLog<TTopics extends EventLogTopics>(opts: RedisEventLogOptions): EventLog<TTopics> {
  const prefix = opts.prefix ?? 'trpc-longpoll:';
  const trimArgs = trimArgsOf(opts.retention);
  const resetGraceMs = opts.resetGraceMs ?? 5_000;
  const serializer = opts.serializer ?? jsonSerializer;
  const readBatch = opts.readBatch ?? 100;
  const recheckMs = opts.recheckMs ?? 15_000;
  const bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 30_000;

  const keyPrefix = opts.redis instanceof Redis ? opts.redis.options.keyPrefix : typeof opts.redis === 'object' ? opts.redis.keyPrefix : undefined;
  if (keyPrefix) {
    // The shared reader matches XREAD replies to streams by key name, which ioredis would return prefixed.
    throw new TypeError('createRedisEventLog: use the `prefix` option instead of an ioredis client with `keyPrefix`');
  }
  const owned = !(opts.redis instanceof Redis);
  const client = (
    opts.redis instanceof Redis ? opts.redis : typeof opts.redis === 'string' ? new Redis(opts.redis) : new Redis(opts.redis)
  ) as ScriptedRedis;
  if (owned) {
    client.on('error', () => {
      // Failures surface through the commands they break.
    });
  }
  // Blocked reads must not be replayed on a new connection: the waker re-reads with fresh ids itself.
  const reader = client.duplicate({ autoResendUnfulfilledCommands: false, maxRetriesPerRequest: null });
  reader.on('error', () => {
    // Failures surface through the reads they break; this only keeps ioredis from reporting them as unhandled.
  });
  if (!client.trpcLongPollPublish) {
    client.defineCommand('trpcLongPollPublish', { numberOfKeys: 2, lua: PUBLISH_SCRIPT });
    client.defineCommand('trpcLongPollRead', { numberOfKeys: 2, lua: READ_SCRIPT });
    client.defineCommand('trpcLongPollHead', { numberOfKeys: 1, lua: HEAD_SCRIPT });
  }
  const waker = new StreamWaker(reader, client, { blockMs: opts.blockMs ?? 5_000, count: 100 });
  const closing = new AbortController();
  const cluster = redisClusterChannel(client, `${prefix}cluster`, closing.signal);

  // Both keys of a topic share a hash tag: the scripts touch one slot.
  const keysOf = (topic: string) => {
    const base = `${prefix}{${topic}}`;
    return { stream: `${base}:events`, meta: `${base}:meta` };
  };

  /**
   * Subscribers that share a read share its entries, and each entry is decoded once for all of them:
   * the same object then reaches every run, which serializes it once for all (the server's serialize-once).
   */
  const decoded = new WeakMap<string[], unknown>();
  const decode = (fields: string[]): unknown => {
    if (decoded.has(fields)) return decoded.get(fields);
    const data = serializer.deserialize(fieldOf(fields, 'd') ?? 'null');
    decoded.set(fields, data);
    return data;
  };

  /** Concurrent reads of the same range (subscribers of one topic at one position) share one round trip. */
  const inflight = new Map<string, Promise<ReadReply>>();
  const read = (stream: string, meta: string, after: string): Promise<ReadReply> => {
    const key = `${stream}\n${after}`;
    let pending = inflight.get(key);
    if (!pending) {
      pending = client.trpcLongPollRead(stream, meta, `(${after}`, readBatch).finally(() => inflight.delete(key));
      inflight.set(key, pending);
    }
    return pending;
  };

  async function* follow(topic: string, options: EventLogSubscribeOptions): AsyncGenerator<TrackedEnvelope<unknown>> {
    const { signal } = options;
    // Before any await: the server holds the subscription's announcement until its position is out.
    const claim = claimBookmarks(signal);
    const { stream, meta } = keysOf(topic);
    const release = waker.watch(stream);
    try {
      let position: StreamPosition;
      const cursor = options.lastEventId;
      if (cursor != null) claim?.settle();
      if (cursor == null && claim) {
        // "From now", pinned: the head (its epoch made if the topic is new), which a run started later elsewhere replays from.
        const [epoch, n, ms] = await client.trpcLongPollHead(meta, newEpoch());
        position = { epoch, id: `${ms}-${n}`, n: Number(n) };
      } else if (cursor == null) {
        // "From now": the newest entry, read atomically with the topic's epoch.
        const [epoch, n, ms] = await client.trpcLongPollRead(stream, meta, '+', 1);
        position = epoch && n && ms ? { epoch, id: `${ms}-${n}`, n: Number(n) } : { epoch: null, id: ORIGIN, n: 0 };
      } else {
        const parsed = parseEventId(cursor);
        if (!parsed) throw new EventLogResetError({ topic, cursor });
        position = parsed;
      }
      const idOf = (at: StreamPosition) => (at.epoch ? formatEventId(at.epoch, at.id) : at.id);
      let bookmarked = -1;
      let bookmarkedAt = Date.now();
      if (claim && cursor == null) {
        bookmarked = position.n;
        yield bookmark(idOf(position));
        claim.settle();
      }
      /** Set while the cursor is ahead of the log: when the grace period ends. */
      let graceEnds: number | null = null;

      for (;;) {
        if (signal?.aborted) return;
        if (closing.signal.aborted) throw new Error('The event log was closed');
        if (claim && position.n !== bookmarked && Date.now() - bookmarkedAt >= bookmarkIntervalMs) {
          bookmarked = position.n;
          bookmarkedAt = Date.now();
          yield bookmark(idOf(position));
        }
        const [epoch, metaN, , entries] = await read(stream, meta, position.id);
        if (signal?.aborted) return;
        const cursorText = () => idOf(position);

        const ahead = epoch === null ? position.n > 0 : epoch === position.epoch && Number(metaN) < position.n;
        if (ahead) {
          graceEnds ??= Date.now() + resetGraceMs;
          const left = graceEnds - Date.now();
          if (left <= 0) throw new EventLogResetError({ topic, cursor: cursorText() });
          // The stream may never pass the cursor's id, so poll instead of waiting on the reader.
          await waitUntil({ ms: Math.min(left, 100), signal });
          continue;
        }
        graceEnds = null;
        if (epoch === null) {
          // Nothing was ever written (or everything was flushed before we started).
          await waker.wait(stream, position.id, signal, recheckMs, true);
          continue;
        }
        if (position.epoch !== null && epoch !== position.epoch) throw new EventLogResetError({ topic, cursor: cursorText() });
        position.epoch = epoch;

        if (entries.length === 0) {
          // The log has events after ours, yet none sorts after our id: its history is not ours.
          if (Number(metaN) !== position.n) throw new EventLogResetError({ topic, cursor: cursorText() });
          await waker.wait(stream, position.id, signal, recheckMs, true);
          continue;
        }
        for (const [id, fields] of entries) {
          // Numbers run without gaps, so a jump means retention dropped events we never had.
          const n = numberOf(id);
          if (n <= position.n) throw new EventLogResetError({ topic, cursor: cursorText() });
          if (n > position.n + 1) throw new EventLogGoneError({ topic, cursor: cursorText() });
          const data = decode(fields);
          position = { epoch, id, n };
          yield tracked(formatEventId(epoch, id), data);
          if (signal?.aborted) return;
        }
        // A short page was the stream's end when read; anything newer wakes the reader.
        if (entries.length < readBatch) await waker.wait(stream, position.id, signal, recheckMs);
      }
    } finally {
      release();
    }
  }

  return {
    async publish(topic, data) {
      if (closing.signal.aborted) throw new Error('The event log is closed');
      const { stream, meta } = keysOf(topic);
      const [epoch, id] = await client.trpcLongPollPublish(stream, meta, newEpoch(), serializer.serialize(data), ...trimArgs);
      return formatEventId(epoch, id);
    },
    async head(topic) {
      if (closing.signal.aborted) throw new Error('The event log is closed');
      const [epoch, n, ms] = await client.trpcLongPollHead(keysOf(topic).meta, newEpoch());
      return formatEventId(epoch, `${ms}-${n}`);
    },
    subscribe<K extends TopicName<TTopics>>(topic: K, options: EventLogSubscribeOptions = {}) {
      if (closing.signal.aborted) throw new Error('The event log is closed');
      return follow(topic, options) as AsyncIterable<TrackedEnvelope<TTopics[K]>>;
    },
    cluster,
    async close() {
      if (closing.signal.aborted) return;
      closing.abort();
      waker.close();
      reader.disconnect();
      if (owned) await client.quit().catch(() => client.disconnect());
    },
  };
}

/**
 * The log's `cluster` channel: Redis pub/sub on one channel. Its subscriber
 * connection (a third one) opens on the first `listen` and closes with the log.
 */
function redisClusterChannel(client: Redis, channel: string, closing: AbortSignal): ClusterChannel {
  const listeners = new Set<(message: string) => void>();
  let subscriber: Redis | null = null;
  const open = () => {
    const connection = client.duplicate();
    connection.on('error', () => {
      // Best effort: a lost connection only delays cleanup on the other instances; ioredis reconnects and resubscribes.
    });
    connection.on('message', (_channel: string, message: string) => {
      for (const listener of listeners) listener(message);
    });
    void connection.subscribe(channel).catch(() => {});
    closing.addEventListener('abort', () => connection.disconnect(), { once: true });
    return connection;
  };
  return {
    send(message) {
      if (closing.aborted) return;
      client.publish(channel, message).catch(() => {});
    },
    listen(onMessage) {
      listeners.add(onMessage);
      if (!subscriber && !closing.aborted) subscriber = open();
      return () => {
        listeners.delete(onMessage);
      };
    },
  };
}
