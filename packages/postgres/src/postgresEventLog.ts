import { tracked, type TrackedEnvelope } from '@trpc/server';
import { waitUntil } from '@trpc-longpoll/protocol';
import {
  bookmark,
  claimBookmarks,
  EventLogGoneError,
  EventLogResetError,
  type ClusterChannel,
  type EventLog,
  type EventLogSubscribeOptions,
  type EventLogTopics,
  type TopicName,
} from '@trpc-longpoll/server';
import pg from 'pg';
import { BookmarkClock } from './bookmarkClock';
import { formatEventId, parseEventId, type Position } from './eventIds';
import { headStatement, publishStatement, readStatement, type Retention } from './queries';
import { channelsOf, checkSchemaName, DEFAULT_SCHEMA } from './schema';
import { connect, isTransient, type Queryable } from './connection';
import { NotifyWaker } from './waker';

export interface PostgresEventLogRetention {
  /** Events kept per topic. Default 10 000 unless `maxAgeMs` is set. */
  maxEvents?: number;
  /** Events older than this (ms, by the database clock) are dropped on the topic's next publish. */
  maxAgeMs?: number;
}

export interface PostgresEventLogOptions {
  /**
   * A `pg` Pool or Client (left open by `close()`), or a connection string /
   * pool settings to connect with (the log's own pool, ended by `close()`).
   * The log opens one more connection, for LISTEN.
   */
  pg: pg.Pool | pg.Client | string | pg.PoolConfig;
  /**
   * Settings of the LISTEN connection. Default: those of `pg` (read from the
   * pool's or client's options); set it when they cannot be read from there,
   * or to listen through another route than the one queries take (a
   * transaction-mode pooler such as PgBouncer does not pass LISTEN on).
   */
  listen?: string | pg.ClientConfig;
  /** Schema of the log's tables. Default `trpc_longpoll`. */
  schema?: string;
  /** Create the schema on first use if it is missing. Default true; with false, run `sql/schema.sql` yourself. */
  createSchema?: boolean;
  retention?: PostgresEventLogRetention;
  /**
   * A cursor ahead of the log, or of another epoch (the tables were
   * truncated or recreated, a database restored, an id from another
   * database), waits this long (ms) for the log to catch up before the
   * subscription fails with `reset`. Default 5 000.
   */
  resetGraceMs?: number;
  /** How data is stored (as text). Default JSON; pass superjson (or similar) for Dates, Maps… */
  serializer?: { serialize: (value: unknown) => string; deserialize: (text: string) => unknown };
  /** Events read per round trip while replaying. Default 100. */
  readBatch?: number;
  /** A waiting subscription re-reads at least this often (ms), notified or not. Default 15 000. */
  recheckMs?: number;
  /** A read failing with connection errors (database restarting) is retried this long (ms) before the subscription fails. Default 60 000. */
  outageMs?: number;
  /** Least time (ms) between two periodic bookmarks of a subscription. Default 30 000. */
  bookmarkIntervalMs?: number;
  /**
   * The LISTEN connection runs `SELECT 1` this often (ms), and is replaced if
   * it does not answer within as long: a peer gone silent (a dropped NAT
   * entry, a failed-over host) can otherwise look idle for minutes. Default 30 000.
   */
  heartbeatMs?: number;
}

const defaultSerializer = { serialize: (value: unknown) => JSON.stringify(value), deserialize: (text: string) => JSON.parse(text) as unknown };

/** NOTIFY payloads must stay under 8 000 bytes; a longer topic is announced as '' (wake every topic). */
const MAX_NOTIFIED_TOPIC = 1_000;

interface Page {
  epoch: string;
  lastN: number;
  events: { n: number; data: string }[];
}

function positiveOption(value: number | undefined, fallback: number, name: string, integer = false): number {
  const result = value ?? fallback;
  if (!(result > 0) || !Number.isFinite(result) || (integer && !Number.isInteger(result))) {
    throw new TypeError(`createPostgresEventLog: ${name} must be a positive ${integer ? 'integer' : 'number'}; got ${String(value)}`);
  }
  return result;
}

function retentionOf(options: PostgresEventLogRetention = {}): Retention {
  const maxAgeMs = options.maxAgeMs === undefined ? null : Math.ceil(positiveOption(options.maxAgeMs, 1, 'retention.maxAgeMs'));
  const maxEvents = options.maxEvents ?? (maxAgeMs === null ? 10_000 : undefined);
  return { maxEvents: maxEvents === undefined ? null : positiveOption(maxEvents, 1, 'retention.maxEvents', true), maxAgeMs };
}

/**
 * An event log in PostgreSQL: one table of events numbered per topic without
 * gaps, LISTEN/NOTIFY as a wake-up hint, so every instance of a service sees
 * the same events and any of them can answer any poll.
 */
export function createPostgresEventLog<TTopics extends EventLogTopics>(opts: PostgresEventLogOptions): EventLog<TTopics> {
  const schema = checkSchemaName(opts.schema ?? DEFAULT_SCHEMA);
  const retention = retentionOf(opts.retention);
  const resetGraceMs = opts.resetGraceMs ?? 5_000;
  if (!(resetGraceMs >= 0 && Number.isFinite(resetGraceMs))) throw new TypeError(`createPostgresEventLog: resetGraceMs must be a number ≥ 0; got ${String(opts.resetGraceMs)}`);
  const serializer = opts.serializer ?? defaultSerializer;
  const readBatch = positiveOption(opts.readBatch, 100, 'readBatch', true);
  const recheckMs = positiveOption(opts.recheckMs, 15_000, 'recheckMs');
  const outageMs = positiveOption(opts.outageMs, 60_000, 'outageMs');
  const bookmarkIntervalMs = positiveOption(opts.bookmarkIntervalMs, 30_000, 'bookmarkIntervalMs');
  const channels = channelsOf(schema);
  const statements = { publish: publishStatement(schema, retention), read: readStatement(schema), head: headStatement(schema) };

  const db = connect(opts, schema);
  const waker = new NotifyWaker({ connection: db.listenConfig, channels, heartbeatMs: positiveOption(opts.heartbeatMs, 30_000, 'heartbeatMs') });
  const closing = new AbortController();
  const closedError = () => new Error('The event log is closed');

  const query = async (statement: { name: string; text: string }, values: unknown[]): Promise<pg.QueryResult<Record<string, string | null>>> => {
    await db.ready();
    return db.client.query({ ...statement, values });
  };

  /** Runs an idempotent read, retrying through connection failures (a restart, a killed backend) for up to `outageMs`. */
  async function retrying<T>(read: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    const began = Date.now();
    for (let failures = 0; ; failures++) {
      try {
        return await read();
      } catch (error) {
        if (!isTransient(error) || Date.now() - began > outageMs || closing.signal.aborted || signal?.aborted) throw error;
        await waitUntil({ ms: Math.min(2_000, 50 * 2 ** failures), signal });
      }
    }
  }

  /** Concurrent reads of the same range (subscribers of one topic at one position) share one round trip. */
  const inflight = new Map<string, Promise<Page>>();
  const read = (topic: string, after: number): Promise<Page> => {
    const key = `${after}\n${topic}`;
    let pending = inflight.get(key);
    if (!pending) {
      pending = query(statements.read, [topic, after, readBatch])
        .then(({ rows }) => ({
          epoch: rows[0]!.epoch!,
          lastN: Number(rows[0]!.last_n),
          events: rows.filter((row) => row.n !== null).map((row) => ({ n: Number(row.n), data: row.data! })),
        }))
        .finally(() => inflight.delete(key));
      inflight.set(key, pending);
    }
    return pending;
  };

  const head = async (topic: string, signal?: AbortSignal): Promise<Position> => {
    const { rows } = await retrying(() => query(statements.head, [topic]), signal);
    return { epoch: rows[0]!.epoch!, n: Number(rows[0]!.last_n) };
  };

  async function* follow(topic: string, options: EventLogSubscribeOptions): AsyncGenerator<TrackedEnvelope<unknown>> {
    const { signal } = options;
    // Before the first await, as the bookmark contract requires.
    const claim = claimBookmarks(signal);
    let unsettled = claim;
    const settle = () => {
      unsettled?.settle();
      unsettled = null;
    };
    if (options.lastEventId != null) settle();
    const release = waker.watch(topic);
    try {
      let position: Position;
      const cursor = options.lastEventId;
      if (cursor == null) {
        // "From now": the newest event, read with the epoch in one statement.
        position = await head(topic, signal);
      } else {
        const parsed = parseEventId(cursor);
        if (!parsed) throw new EventLogResetError({ topic, cursor });
        position = parsed;
      }
      const bookmarks = claim ? new BookmarkClock(bookmarkIntervalMs, formatEventId(position)) : null;
      if (claim && cursor == null) {
        yield bookmark(formatEventId(position));
        settle();
      }
      /** Set while the cursor is ahead of the log or of another epoch: when the grace period ends. */
      let graceEnds: number | null = null;

      for (;;) {
        if (signal?.aborted) return;
        if (closing.signal.aborted) throw new Error('The event log was closed');
        const ticket = waker.ticket(topic);
        const page = await retrying(() => read(topic, position.n), signal);
        if (signal?.aborted) return;
        const cursorText = () => formatEventId(position);

        if (page.epoch !== position.epoch || page.lastN < position.n) {
          graceEnds ??= Date.now() + resetGraceMs;
          const left = graceEnds - Date.now();
          if (left <= 0) throw new EventLogResetError({ topic, cursor: cursorText() });
          // The log may never pass the cursor's number, so poll instead of waiting on notifications.
          await waitUntil({ ms: Math.min(left, 100), signal });
          continue;
        }
        graceEnds = null;

        for (const event of page.events) {
          // Numbers run without gaps, so a jump means retention dropped events we never had.
          if (event.n !== position.n + 1) throw new EventLogGoneError({ topic, cursor: cursorText() });
          if (bookmarks?.due(formatEventId(position))) yield bookmarks.mark(formatEventId(position));
          const data = serializer.deserialize(event.data);
          position = { epoch: page.epoch, n: event.n };
          yield tracked(formatEventId(position), data);
          if (signal?.aborted) return;
        }
        // Everything after us was trimmed (by age) before we read it.
        if (page.events.length === 0 && page.lastN > position.n) throw new EventLogGoneError({ topic, cursor: cursorText() });
        // A full page may have more behind it; a short one was the topic's end when read.
        if (page.events.length === readBatch) continue;
        if (bookmarks?.due(formatEventId(position))) yield bookmarks.mark(formatEventId(position));
        await waker.wait(ticket, signal, Math.min(recheckMs, bookmarks?.msUntilDue(formatEventId(position)) ?? Infinity));
      }
    } finally {
      settle();
      release();
    }
  }

  const cluster: ClusterChannel = {
    send: (message) => waker.send(message),
    listen: (onMessage) => waker.listen(onMessage),
  };

  return {
    async publish(topic, data) {
      if (closing.signal.aborted) throw closedError();
      const payload = topic.length <= MAX_NOTIFIED_TOPIC ? topic : '';
      const text = serializer.serialize(data);
      if (typeof text !== 'string') throw new TypeError(`publish("${topic.slice(0, 100)}"): the serializer returned ${typeof text}, not a string (JSON cannot store undefined or a function)`);
      const { rows } = await query(statements.publish, [topic, text, channels.events, payload]);
      return formatEventId({ epoch: rows[0]!.epoch!, n: Number(rows[0]!.n) });
    },
    async head(topic) {
      if (closing.signal.aborted) throw closedError();
      return formatEventId(await head(topic));
    },
    subscribe<K extends TopicName<TTopics>>(topic: K, options: EventLogSubscribeOptions = {}) {
      if (closing.signal.aborted) throw closedError();
      return follow(topic, options) as AsyncIterable<TrackedEnvelope<TTopics[K]>>;
    },
    cluster,
    async close() {
      if (closing.signal.aborted) return;
      closing.abort();
      waker.close();
      await db.close();
    },
  };
}
