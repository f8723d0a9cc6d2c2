import { tracked, type TrackedEnvelope } from '@trpc/server';
import { waitUntil } from '@trpc-longpoll/protocol';
import {
  bookmark,
  claimBookmarks,
  EventLogGoneError,
  EventLogResetError,
  newEpoch,
  type EventLog,
  type EventLogSubscribeOptions,
  type EventLogTopics,
  type TopicName,
} from '@trpc-longpoll/server';
import { Redis } from '@upstash/redis';
import { RestClusterChannel } from './cluster';
import { CommandBatcher, Script } from './commands';
import { Poller, type ReadReply } from './poller';
import {
  HEAD_SCRIPT,
  ORIGIN,
  PUBLISH_SCRIPT,
  READ_SCRIPT,
  formatEventId,
  jsonSerializer,
  numberOf,
  parseEventId,
  trimArgsOf,
  type RedisEventLogRetention,
  type StreamPosition,
} from '@trpc-longpoll/redis/format';

/** How much of each topic's stream is kept: the Redis log's retention. */
export type UpstashEventLogRetention = RedisEventLogRetention;

/** What `new Redis(…)` from `@upstash/redis` takes, reduced to what the log needs. */
export interface UpstashRestConfig {
  /** The database's REST URL (`UPSTASH_REDIS_REST_URL`). */
  url: string;
  /** Its REST token (`UPSTASH_REDIS_REST_TOKEN`). */
  token: string;
}

export interface UpstashEventLogOptions {
  /**
   * The REST URL and token, or an `@upstash/redis` client made with
   * `automaticDeserialization: false` (the log stores text it must get back
   * as text). The log never closes a client it was given.
   */
  redis: UpstashRestConfig | Redis;
  /** Prefix of every key the log writes. Default `trpc-longpoll:`, as the Redis log's: both read the same topics. */
  prefix?: string;
  retention?: UpstashEventLogRetention;
  /** A cursor ahead of the log waits this long (ms) for it to catch up before `reset`. Default 5 000. */
  resetGraceMs?: number;
  /** How data is stored. Default JSON; pass superjson (or similar) for Dates, Maps… */
  serializer?: { serialize: (value: unknown) => string; deserialize: (text: string) => unknown };
  /** Entries read per round trip while replaying. Default 100. */
  readBatch?: number;
  /** Longest pause (ms) between two reads of a quiet topic a subscription waits on. Default 1 000. */
  pollIntervalMs?: number;
  /** First pause (ms) after news; it doubles up to `pollIntervalMs` while nothing happens. Default 50. */
  minPollMs?: number;
  /** A subscription that takes bookmarks gets one at most this often (ms), when its position moved. Default 30 000. */
  bookmarkIntervalMs?: number;
}

export interface UpstashEventLog<TTopics extends EventLogTopics> extends EventLog<TTopics> {
  readonly cluster: RestClusterChannel;
  /** HTTP requests this log has sent to the REST API so far. */
  requests(): number;
}

const publishScript = new Script(PUBLISH_SCRIPT);
const readScript = new Script(READ_SCRIPT);
const headScript = new Script(HEAD_SCRIPT);

function fieldOf(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

function clientOf(redis: UpstashRestConfig | Redis): Redis {
  if (typeof redis !== 'object' || redis === null) throw new TypeError('createUpstashEventLog: `redis` must be { url, token } or an @upstash/redis client');
  if (redis instanceof Redis || typeof (redis as { pipeline?: unknown }).pipeline === 'function') {
    const opts = (redis as unknown as { opts?: { automaticDeserialization?: boolean } }).opts;
    if (opts?.automaticDeserialization !== false) {
      throw new TypeError('createUpstashEventLog: make the client with `automaticDeserialization: false`, or pass { url, token }');
    }
    return redis as Redis;
  }
  if (typeof (redis as UpstashRestConfig).url !== 'string' || typeof (redis as UpstashRestConfig).token !== 'string') {
    throw new TypeError('createUpstashEventLog: `redis` must be { url, token } or an @upstash/redis client');
  }
  const { url, token } = redis as UpstashRestConfig;
  return new Redis({ url, token, automaticDeserialization: false, enableAutoPipelining: false, enableTelemetry: false });
}

const idOf = (p: StreamPosition) => (p.epoch ? formatEventId(p.epoch, p.id) : p.id);

/**
 * What a read says about a subscription at `position`: its cursor is ahead
 * of the log (wait for it, up to the grace period), the log's history is
 * not the cursor's (`reset`), or the entries (if any) follow on.
 */
function judge(reply: ReadReply, position: StreamPosition): 'ahead' | 'reset' | 'on' {
  const [epoch, metaN, , entries] = reply;
  if (epoch === null) return position.n > 0 ? 'ahead' : 'on';
  if (position.epoch !== null && epoch !== position.epoch) return 'reset';
  if (Number(metaN) < position.n) return 'ahead';
  // The log has events after ours, yet none sorts after our id: its history is not ours.
  if (entries.length === 0 && Number(metaN) !== position.n) return 'reset';
  return 'on';
}

function positive(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(Number.isFinite(value) && value > 0)) throw new TypeError(`createUpstashEventLog: ${name} must be a positive number`);
  return value;
}

/** When a subscription that takes bookmarks is due for one: time passed and position moved since the last. */
class BookmarkClock {
  private at = Date.now();

  constructor(
    private last: string,
    private readonly intervalMs: number,
  ) {}

  due(position: string): string | null {
    if (position === this.last || Date.now() - this.at < this.intervalMs) return null;
    this.last = position;
    this.at = Date.now();
    return position;
  }

  /** How long a wait at `position` may last before a bookmark falls due; undefined when none will. */
  until(position: string): number | undefined {
    if (position === this.last) return undefined;
    return Math.max(0, this.intervalMs - (Date.now() - this.at));
  }
}

/**
 * An event log in Redis Streams over Upstash's REST API: the same streams,
 * ids and guarantees as `@trpc-longpoll/redis`, for hosts where no TCP
 * connection outlives a request (Lambda, Vercel Node and Edge functions,
 * Cloudflare Workers). Nothing blocks: a waiting subscription's topic is
 * re-read on a schedule with backoff (see {@link Poller}), the reads due
 * at one moment in one request.
 */
export function createUpstashEventLog<TTopics extends EventLogTopics>(opts: UpstashEventLogOptions): UpstashEventLog<TTopics> {
  const prefix = opts.prefix ?? 'trpc-longpoll:';
  const trimArgs = trimArgsOf(opts.retention);
  const resetGraceMs = opts.resetGraceMs ?? 5_000;
  const serializer = opts.serializer ?? jsonSerializer;
  const readBatch = Math.max(1, Math.floor(positive(opts.readBatch, 'readBatch', 100)));
  const pollIntervalMs = positive(opts.pollIntervalMs, 'pollIntervalMs', 1_000);
  const minPollMs = Math.min(positive(opts.minPollMs, 'minPollMs', 50), pollIntervalMs);
  const bookmarkIntervalMs = positive(opts.bookmarkIntervalMs, 'bookmarkIntervalMs', 30_000);

  const batcher = new CommandBatcher(clientOf(opts.redis));
  const poller = new Poller(batcher, { readScript, readBatch, minPollMs, pollIntervalMs });
  const cluster = new RestClusterChannel(batcher, `${prefix}{cluster}:messages`);
  poller.onPoll = () => cluster.receive();
  const closing = new AbortController();

  // Both keys of a topic share a hash tag, as in the Redis log: the scripts touch one slot.
  const keysOf = (topic: string) => {
    const base = `${prefix}{${topic}}`;
    return { stream: `${base}:events`, meta: `${base}:meta` };
  };

  /** Where a subscription without a cursor starts: the newest event, read atomically with the epoch. */
  async function startOf(stream: string, meta: string, claimed: boolean): Promise<StreamPosition> {
    if (claimed) {
      // head()'s answer, which gives an unwritten topic its epoch, so the start bookmark is a real id.
      const [epoch, n, ms] = await batcher.run<[string, string, string]>(headScript, [meta], [newEpoch()]);
      return { epoch, id: `${ms}-${n}`, n: Number(n) };
    }
    const [epoch, n, ms] = await batcher.run<ReadReply>(readScript, [stream, meta], ['+', '1']);
    return epoch && n && ms ? { epoch, id: `${ms}-${n}`, n: Number(n) } : { epoch: null, id: ORIGIN, n: 0 };
  }

  /** Where a subscription starts, and (when its transport takes bookmarks) the start position as the first item. */
  async function* follow(topic: string, options: EventLogSubscribeOptions): AsyncGenerator<TrackedEnvelope<unknown>> {
    const { signal } = options;
    // Before any await: the server holds the subscription's announcement until its position is out.
    const claim = claimBookmarks(signal);
    const cursor = options.lastEventId;
    if (claim && cursor != null) claim.settle();
    const { stream, meta } = keysOf(topic);
    if (cursor != null) {
      const parsed = parseEventId(cursor);
      if (!parsed) throw new EventLogResetError({ topic, cursor });
      yield* tail(topic, parsed, claim ? new BookmarkClock(cursor, bookmarkIntervalMs) : null, signal);
      return;
    }
    let position: StreamPosition;
    try {
      position = await startOf(stream, meta, claim !== null);
    } catch (error) {
      claim?.settle();
      throw error;
    }
    if (claim) {
      // "From now" is pinned here: a run started later elsewhere replays from this id.
      yield bookmark(idOf(position));
      claim.settle();
    }
    yield* tail(topic, position, claim ? new BookmarkClock(idOf(position), bookmarkIntervalMs) : null, signal);
  }

  /** Everything after `position`: replayed, then followed on the poller's schedule. */
  async function* tail(topic: string, position: StreamPosition, clock: BookmarkClock | null, signal: AbortSignal | undefined) {
    const { stream, meta } = keysOf(topic);
    /** Set while the cursor is ahead of the log: when the grace period ends. */
    let graceEnds: number | null = null;
    let reply: ReadReply | null = await poller.read(stream, meta, position.id);
    for (;;) {
      if (signal?.aborted) return;
      if (closing.signal.aborted) throw new Error('The event log was closed');
      if (reply === null) {
        // Woken without news (to re-check, or for a bookmark): read again.
        reply = await poller.read(stream, meta, position.id);
        continue;
      }
      const verdict = judge(reply, position);
      if (verdict === 'reset') throw new EventLogResetError({ topic, cursor: idOf(position) });
      if (verdict === 'ahead') {
        graceEnds ??= Date.now() + resetGraceMs;
        const left = graceEnds - Date.now();
        if (left <= 0) throw new EventLogResetError({ topic, cursor: idOf(position) });
        await waitUntil({ ms: Math.min(left, 100), signal });
        reply = null;
        continue;
      }
      graceEnds = null;
      const [epoch, , , entries] = reply;
      if (epoch !== null) position.epoch = epoch;
      for (const [id, fields] of entries) {
        // Numbers run without gaps, so a jump means retention dropped events we never had.
        const n = numberOf(id);
        if (n <= position.n) throw new EventLogResetError({ topic, cursor: idOf(position) });
        if (n > position.n + 1) throw new EventLogGoneError({ topic, cursor: idOf(position) });
        const due = clock?.due(idOf(position));
        if (due) yield bookmark(due);
        const data = serializer.deserialize(fieldOf(fields, 'd') ?? 'null');
        position = { epoch: epoch!, id, n };
        yield tracked(formatEventId(epoch!, id), data);
        if (signal?.aborted) return;
      }
      if (entries.length === readBatch) {
        // A full page: there may be more right away.
        reply = await poller.read(stream, meta, position.id);
        continue;
      }
      const due = clock?.due(idOf(position));
      if (due) yield bookmark(due);
      // A procedure that filters events learns the position only from bookmarks: one falls due even while idle.
      reply = await poller.next(stream, meta, position.id, position, signal, clock?.until(idOf(position)));
    }
  }

  return {
    cluster,
    requests: () => batcher.requests,
    async publish(topic, data) {
      if (closing.signal.aborted) throw new Error('The event log is closed');
      const { stream, meta } = keysOf(topic);
      const [epoch, id] = await batcher.run<[string, string]>(publishScript, [stream, meta], [newEpoch(), serializer.serialize(data), ...trimArgs]);
      return formatEventId(epoch, id);
    },
    async head(topic) {
      if (closing.signal.aborted) throw new Error('The event log is closed');
      const [epoch, n, ms] = await batcher.run<[string, string, string]>(headScript, [keysOf(topic).meta], [newEpoch()]);
      return formatEventId(epoch, `${ms}-${n}`);
    },
    subscribe<K extends TopicName<TTopics>>(topic: K, options: EventLogSubscribeOptions = {}) {
      if (closing.signal.aborted) throw new Error('The event log is closed');
      return follow(topic, options) as AsyncIterable<TrackedEnvelope<TTopics[K]>>;
    },
    async close() {
      if (closing.signal.aborted) return;
      closing.abort();
      cluster.close();
      poller.close();
    },
  };
}
