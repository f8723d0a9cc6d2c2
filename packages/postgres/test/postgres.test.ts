import { readFileSync } from 'node:fs';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { isBookmark, EventLogGoneError, EventLogResetError, type EventLog } from '@trpc-longpoll/server';
import { createPostgresEventLog, DEFAULT_SCHEMA, schemaSql, type PostgresEventLogOptions } from '@trpc-longpoll/postgres';
import pg from 'pg';
import superjson from 'superjson';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DATABASE_URL, dropSchemas, eventLogSuite, postgresAvailable, sql, uniqueSchema } from '@trpc-longpoll/e2e';
import { markBookmarks } from '../../server/src/log/bookmarks';

const available = await postgresAvailable('@trpc-longpoll/postgres tests');
const runSchema = uniqueSchema('pg');
const schemas: string[] = [];

afterAll(async () => {
  if (available) await dropSchemas(...schemas);
});

let logCount = 0;
function makeLog<T extends Record<string, unknown>>(overrides: Partial<PostgresEventLogOptions> = {}) {
  const schema = overrides.schema ?? `${runSchema}_${++logCount}`;
  schemas.push(schema);
  // A long re-check time, so a lost wake-up shows as a timeout instead of being papered over.
  const log = createPostgresEventLog<T>({ pg: DATABASE_URL, recheckMs: 60_000, ...overrides, schema });
  return { log, schema };
}

/** Connections of this test's logs, by what they are doing, from the server's own view. */
async function backends(applicationName: string): Promise<{ pid: number; query: string }[]> {
  return sql(`SELECT pid, query FROM pg_stat_activity WHERE application_name = $1`, [applicationName]);
}

/** A TCP relay to PostgreSQL whose connections can be frozen: bytes stop flowing, nothing is closed. */
async function startFreezableProxy(target: URL) {
  const pairs: { client: Socket; upstream: Socket }[] = [];
  const server = createNetServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    pairs.push({ client, upstream });
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => pairs.length,
    freezeAll: () => {
      for (const { client, upstream } of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    close: async () => {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Polls an asynchronous check until it holds. */
async function waitFor(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const schemaOf = new WeakMap<EventLog<any>, string>();

describe.skipIf(!available)('PostgreSQL event log', () => {
  eventLogSuite('PostgreSQL', {
    create: async ({ maxEvents, resetGraceMs }) => {
      const { log, schema } = makeLog({ retention: { maxEvents }, resetGraceMs });
      schemaOf.set(log, schema);
      return log;
    },
    aheadOf: (id) => id.replace(/:(\d+)$/, (_, n: string) => `:${Number(n) + 1}`),
    // What losing the tables does to this log: TRUNCATE (the triggers mint a new epoch).
    forget: async (log) => {
      const schema = schemaOf.get(log)!;
      await sql(`TRUNCATE ${schema}.events, ${schema}.topics`);
      return log;
    },
  });

  type Topics = { [K: `t:${string}`]: number };
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  function follow(log: EventLog<Topics>, topic: `t:${string}`, lastEventId?: string | null, signal?: AbortSignal) {
    const controller = new AbortController();
    signal?.addEventListener('abort', () => controller.abort());
    const iter = log.subscribe(topic, { lastEventId, signal: signal ?? controller.signal })[Symbol.asyncIterator]();
    cleanups.push(() => controller.abort());
    return iter;
  }
  function withLog(overrides: Partial<PostgresEventLogOptions> = {}) {
    const made = makeLog<Topics>(overrides);
    cleanups.push(() => made.log.close());
    return made;
  }

  it('serves any number of waiting subscriptions of a process over one LISTEN connection', async () => {
    const name = `tlp-conn-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const { log } = withLog({ pg: { connectionString: DATABASE_URL, application_name: name, max: 4 } });
    const iters = Array.from({ length: 40 }, (_, i) => follow(log, `t:${i % 20}`));
    const nexts = iters.map((iter) => iter.next());
    await waitFor(async () => (await backends(name)).some((b) => b.query.startsWith('LISTEN')), 10_000, 'the LISTEN connection');
    for (let i = 0; i < 20; i++) await log.publish(`t:${i}`, i);
    const values = await Promise.all(nexts);
    expect(values.map((step) => step.value![1])).toEqual(Array.from({ length: 40 }, (_, i) => i % 20));
    const connections = await backends(name);
    expect(connections.filter((b) => b.query.startsWith('LISTEN'))).toHaveLength(1);
    // The pool's (at most 4) and the listener: not one per subscription.
    expect(connections.length).toBeLessThanOrEqual(5);
  });

  it('keeps delivering, nothing lost, after pg_terminate_backend of the listening connection mid-stream', async () => {
    const name = `tlp-kill-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const { log } = withLog({ pg: { connectionString: DATABASE_URL, application_name: name } });
    const iter = follow(log, 't:kill', await log.head('t:kill'));
    const received: number[] = [];
    const reading = (async () => {
      while (received.length < 60) received.push((await iter.next()).value![1]);
    })();
    const listener = async () => (await backends(name)).find((b) => b.query.startsWith('LISTEN'));
    await waitFor(async () => (await listener()) !== undefined, 10_000, 'the LISTEN connection');
    for (let i = 1; i <= 20; i++) await log.publish('t:kill', i);
    await waitFor(() => received.length === 20, 10_000, 'the first 20 events');
    const killed = (await listener())!.pid;
    const publishing = (async () => {
      for (let i = 21; i <= 60; i++) {
        await log.publish('t:kill', i);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    expect((await sql<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [killed]))[0]!.ok).toBe(true);
    await publishing;
    // recheckMs is a minute: only the reconnected listener can deliver these in time.
    await reading;
    expect(received).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    const replaced = await listener();
    expect(replaced && replaced.pid).not.toBe(killed);
  });

  it('replaces a LISTEN connection that went silent (no error, no close) once it misses a heartbeat', async () => {
    const proxy = await startFreezableProxy(new URL(DATABASE_URL));
    cleanups.push(() => proxy.close());
    const listen = new URL(DATABASE_URL);
    listen.port = String(proxy.port);
    const { log } = withLog({ listen: listen.toString(), heartbeatMs: 300 });
    const iter = follow(log, 't:silent', await log.head('t:silent'));
    const first = iter.next();
    await log.publish('t:silent', 1);
    expect((await first).value![1]).toBe(1);
    expect(proxy.connections()).toBe(1);
    // The listener's packets now go nowhere, as behind a dropped NAT entry: no error, no close.
    proxy.freezeAll();
    const second = iter.next();
    // Let the subscription read (nothing new) and wait: a read racing the publish would find 2 without any wake-up.
    await new Promise((resolve) => setTimeout(resolve, 150));
    await log.publish('t:silent', 2);
    // recheckMs is a minute: only a new listener, after a missed heartbeat, can deliver this in time.
    expect((await second).value![1]).toBe(2);
    expect(proxy.connections()).toBe(2);
  });

  it('wakes a subscription whose topic is longer than a NOTIFY payload allows', async () => {
    const { log } = withLog();
    const topic = `t:${'x'.repeat(10_000)}` as const;
    const next = follow(log, topic, await log.head(topic)).next();
    await log.publish(topic, 7);
    expect((await next).value![1]).toBe(7);
  });

  it('retention by age: an idle subscriber at the newest event is not "gone", a cursor older than the age is', async () => {
    const { log, schema } = withLog({ retention: { maxAgeMs: 200 } });
    const ids = [await log.publish('t:age', 1), await log.publish('t:age', 2)];
    const waiting = follow(log, 't:age', ids[1]).next();
    await new Promise((resolve) => setTimeout(resolve, 400));
    // This publish drops events 1 and 2 (older than 200 ms); the live subscriber had both.
    await log.publish('t:age', 3);
    expect((await waiting).value![1]).toBe(3);
    await expect(follow(log, 't:age', ids[0]).next()).rejects.toBeInstanceOf(EventLogGoneError);
    expect((await follow(log, 't:age', ids[1]).next()).value![1]).toBe(3);
    // With every event dropped, a cursor at the newest one still waits for the next.
    const id3 = await log.head('t:age');
    await sql(`DELETE FROM ${schema}.events WHERE topic = 't:age'`);
    const atNewest = follow(log, 't:age', id3).next();
    await log.publish('t:age', 4);
    expect((await atNewest).value![1]).toBe(4);
  });

  it('stores data with the given serializer, and leaves a pool it was given open', async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL });
    cleanups.push(() => pool.end());
    const { log } = makeLog<{ 't:rich': { at: Date; tags: Set<string> } }>({
      pg: pool,
      serializer: { serialize: superjson.stringify, deserialize: superjson.parse },
    });
    const iter = log.subscribe('t:rich', { lastEventId: await log.head('t:rich') })[Symbol.asyncIterator]();
    await log.publish('t:rich', { at: new Date('2026-01-02T03:04:05Z'), tags: new Set(['a']) });
    const { value } = await iter.next();
    expect(value![1].at).toEqual(new Date('2026-01-02T03:04:05Z'));
    expect(value![1].tags).toEqual(new Set(['a']));
    await iter.return?.();
    await log.close();
    expect((await pool.query('SELECT 1 AS one')).rows[0].one).toBe(1);
  });

  it('works over a single client it was given, listening with the client\'s settings', async () => {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    cleanups.push(() => client.end());
    const { log } = withLog({ pg: client });
    const next = follow(log, 't:client', await log.head('t:client')).next();
    await log.publish('t:client', 1);
    expect((await next).value![1]).toBe(1);
  });

  it('ships sql/schema.sql for createSchema: false, and fails clearly without it', async () => {
    const file = readFileSync(new URL('../sql/schema.sql', import.meta.url), 'utf8');
    expect(file).toBe(schemaSql(DEFAULT_SCHEMA));
    const schema = `${runSchema}_manual`;
    const { log } = withLog({ schema, createSchema: false });
    await expect(log.publish('t:m', 1)).rejects.toThrow(/does not exist/);
    await sql(file.replaceAll(DEFAULT_SCHEMA, schema));
    const id = await log.publish('t:m', 1);
    expect(await log.head('t:m')).toBe(id);
  });

  it('rejects bad options with a TypeError naming the option', () => {
    expect(() => createPostgresEventLog({ pg: DATABASE_URL, schema: 'Robert"; DROP TABLE x' })).toThrow(TypeError);
    expect(() => createPostgresEventLog({ pg: DATABASE_URL, retention: { maxEvents: 0 } })).toThrow(/retention.maxEvents/);
    expect(() => createPostgresEventLog({ pg: DATABASE_URL, retention: { maxAgeMs: -1 } })).toThrow(/retention.maxAgeMs/);
    expect(() => createPostgresEventLog({ pg: DATABASE_URL, readBatch: 1.5 })).toThrow(/readBatch/);
    expect(() => createPostgresEventLog({ pg: DATABASE_URL, resetGraceMs: -1 })).toThrow(/resetGraceMs/);
    expect(() => createPostgresEventLog({ pg: DATABASE_URL, recheckMs: Number.NaN })).toThrow(/recheckMs/);
  });

  it('rejects data the serializer cannot store with a TypeError, and keeps serving', async () => {
    const { log } = withLog();
    await expect(log.publish('t:u', undefined as unknown as number)).rejects.toThrow(TypeError);
    const next = follow(log, 't:u', await log.head('t:u')).next();
    await log.publish('t:u', 1);
    expect((await next).value![1]).toBe(1);
  });

  it('a DELETE from the topics table (counters restart) gives ids a new epoch: old cursors get "reset"', async () => {
    const { log, schema } = withLog({ resetGraceMs: 200 });
    const ids = [await log.publish('t:d', 1), await log.publish('t:d', 2), await log.publish('t:d', 3)];
    await sql(`DELETE FROM ${schema}.events; DELETE FROM ${schema}.topics`);
    for (let i = 1; i <= 5; i++) await log.publish('t:d', i);
    await expect(follow(log, 't:d', ids[1]).next()).rejects.toBeInstanceOf(EventLogResetError);
  });

  describe('bookmarks', () => {
    /** A signal marked as the long-poll server marks it for a client that takes bookmarks. */
    function bookmarkingSignal() {
      const controller = new AbortController();
      const hooks = { claims: 0, settles: 0, claim: () => hooks.claims++, settle: () => hooks.settles++ };
      markBookmarks(controller.signal, hooks);
      cleanups.push(() => controller.abort());
      return { signal: controller.signal, hooks };
    }

    it('without lastEventId: the start position first, settled once it is out; then periodic bookmarks only when the position moved', async () => {
      const { log } = withLog({ bookmarkIntervalMs: 150 });
      await log.publish('t:b', 0);
      const head = await log.head('t:b');
      const { signal, hooks } = bookmarkingSignal();
      const iter = follow(log, 't:b', null, signal);
      const first = await iter.next();
      expect(hooks).toMatchObject({ claims: 1, settles: 0 });
      expect(first.value![0]).toBe(head);
      expect(isBookmark(first.value)).toBe(true);
      const second = iter.next();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(hooks.settles).toBe(1);
      const ids = [await log.publish('t:b', 1), await log.publish('t:b', 2)];
      expect((await second).value![0]).toBe(ids[0]);
      expect((await iter.next()).value![0]).toBe(ids[1]);
      // Nothing more is published: about to wait, past the interval, it marks where it is.
      const mark = await iter.next();
      expect(isBookmark(mark.value)).toBe(true);
      expect(mark.value![0]).toBe(ids[1]);
      // Its position has not moved since: the next item is the next event, not another bookmark.
      const next = iter.next();
      await new Promise((resolve) => setTimeout(resolve, 400));
      const id3 = await log.publish('t:b', 3);
      const step = await next;
      expect(isBookmark(step.value)).toBe(false);
      expect(step.value!.slice(0, 2)).toEqual([id3, 3]);
    });

    it('with lastEventId: settled before anything is read, and no start bookmark', async () => {
      const { log } = withLog();
      const id = await log.publish('t:c', 1);
      const { signal, hooks } = bookmarkingSignal();
      const iter = follow(log, 't:c', id, signal);
      const next = iter.next();
      expect(hooks).toMatchObject({ claims: 1, settles: 1 });
      await log.publish('t:c', 2);
      expect((await next).value![1]).toBe(2);
    });
  });

  it('cluster: a message sent by one log reaches the listeners of every log on the schema, and send never throws', async () => {
    const { log: a, schema } = withLog();
    const { log: b } = withLog({ schema });
    const heardByA: string[] = [];
    const heardByB: string[] = [];
    const stopA = a.cluster!.listen((m) => heardByA.push(m));
    b.cluster!.listen((m) => heardByB.push(m));
    // Sent before the listening connections are up: lost, never thrown (best effort).
    b.cluster!.send('early');
    await waitFor(
      async () => {
        b.cluster!.send('hello');
        await new Promise((resolve) => setTimeout(resolve, 50));
        return heardByA.includes('hello') && heardByB.includes('hello');
      },
      10_000,
      'both logs to hear the message',
    );
    stopA();
    const before = heardByA.length;
    b.cluster!.send('after stop');
    await waitFor(() => heardByB.includes('after stop'), 5_000, 'b to hear its own message');
    expect(heardByA).toHaveLength(before);
    await b.close();
    expect(() => b.cluster!.send('after close')).not.toThrow();
  });
});
