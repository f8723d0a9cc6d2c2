import { EventLogGoneError, EventLogResetError, type EventLog } from '@trpc-longpoll/server';
import { createRedisEventLog, type RedisEventLogOptions } from '@trpc-longpoll/redis';
import { Redis } from 'ioredis';
import superjson from 'superjson';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { REDIS_URL, deleteKeys, eventLogSuite, redisAvailable, startPrivateRedis, uniquePrefix } from '@trpc-longpoll/e2e';

const available = await redisAvailable('@trpc-longpoll/redis tests');
const runPrefix = uniquePrefix('redis');
let admin: Redis | undefined;

function adminClient(): Redis {
  admin ??= new Redis(REDIS_URL);
  return admin;
}

afterAll(async () => {
  if (!admin) return;
  await deleteKeys(admin, runPrefix);
  admin.disconnect();
});

let logCount = 0;
function makeLog<T extends Record<string, unknown>>(overrides: Partial<RedisEventLogOptions> = {}) {
  const prefix = `${runPrefix}${++logCount}:`;
  // Long block and re-check times, so a lost wake-up shows as a timeout instead of being papered over.
  const log = createRedisEventLog<T>({ redis: REDIS_URL, prefix, blockMs: 60_000, recheckMs: 60_000, ...overrides });
  return { log, prefix };
}

const prefixes = new WeakMap<EventLog<any>, string>();

describe.skipIf(!available)('Redis event log', () => {
  eventLogSuite('Redis Streams', {
    create: async ({ maxEvents, resetGraceMs }) => {
      const { log, prefix } = makeLog({ retention: { maxLen: maxEvents, exact: true }, resetGraceMs });
      prefixes.set(log, prefix);
      return log;
    },
    aheadOf: (id) => id.replace(/-(\d+)$/, (_, n: string) => `-${Number(n) + 1}`),
    // What FLUSHALL does to this log: every key it owns disappears.
    forget: async (log) => {
      await deleteKeys(adminClient(), prefixes.get(log)!);
      return log;
    },
  });

  type Topics = { [K: `t:${string}`]: number };
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  function follow(log: EventLog<Topics>, topic: `t:${string}`, lastEventId?: string) {
    const controller = new AbortController();
    const iter = log.subscribe(topic, { lastEventId, signal: controller.signal })[Symbol.asyncIterator]();
    cleanups.push(() => controller.abort());
    return iter;
  }

  it('serves any number of subscriptions of a process over two connections', async () => {
    const name = `tlp-conn-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const url = new URL(REDIS_URL);
    const { log } = makeLog<Topics>({ redis: { host: url.hostname, port: Number(url.port || 6379), connectionName: name } });
    cleanups.push(() => log.close());
    const iters = Array.from({ length: 40 }, (_, i) => follow(log, `t:${i % 20}`));
    const nexts = iters.map((iter) => iter.next());
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (let i = 0; i < 20; i++) await log.publish(`t:${i}`, i);
    const values = await Promise.all(nexts);
    expect(values.map((step) => step.value![1])).toEqual(Array.from({ length: 40 }, (_, i) => i % 20));
    const clients = String(await adminClient().client('LIST'))
      .split('\n')
      .filter((line) => line.includes(` name=${name} `));
    expect(clients).toHaveLength(2);
  });

  it('wakes a subscription whose topic joined while the shared reader was blocked on others', async () => {
    const { log } = makeLog<Topics>();
    cleanups.push(() => log.close());
    const first = follow(log, 't:first').next();
    await new Promise((resolve) => setTimeout(resolve, 150));
    const second = follow(log, 't:second').next();
    await new Promise((resolve) => setTimeout(resolve, 150));
    await log.publish('t:second', 2);
    expect((await second).value![1]).toBe(2);
    await log.publish('t:first', 1);
    expect((await first).value![1]).toBe(1);
  });

  it('age-based retention (MINID): an idle subscriber is not "gone", a cursor older than the age is', async () => {
    const { log } = makeLog<Topics>({ retention: { maxAgeMs: 200, exact: true } });
    cleanups.push(() => log.close());
    const ids = [await log.publish('t:age', 1), await log.publish('t:age', 2)];
    const live = follow(log, 't:age', ids[1]);
    const waiting = live.next();
    await new Promise((resolve) => setTimeout(resolve, 400));
    // This publish trims events 1 and 2 (older than 200 ms); the live subscriber had both.
    await log.publish('t:age', 3);
    expect((await waiting).value![1]).toBe(3);
    await expect(follow(log, 't:age', ids[0]).next()).rejects.toBeInstanceOf(EventLogGoneError);
    // Having seen event 2, nothing retained is missing: 3 follows.
    expect((await follow(log, 't:age', ids[1]).next()).value![1]).toBe(3);
  });

  it('stores data with the given serializer, and leaves a client it was given open', async () => {
    const redis = new Redis(REDIS_URL);
    cleanups.push(() => redis.disconnect());
    const { log } = makeLog<{ 't:rich': { at: Date; tags: Set<string> } }>({
      redis,
      serializer: { serialize: superjson.stringify, deserialize: superjson.parse },
    });
    const iter = log.subscribe('t:rich', { lastEventId: await log.head('t:rich') })[Symbol.asyncIterator]();
    await log.publish('t:rich', { at: new Date('2026-01-02T03:04:05Z'), tags: new Set(['a']) });
    const { value } = await iter.next();
    expect(value![1].at).toEqual(new Date('2026-01-02T03:04:05Z'));
    expect(value![1].tags).toEqual(new Set(['a']));
    await iter.return?.();
    await log.close();
    expect(await redis.ping()).toBe('PONG');
  });

  it('trims approximately by default and keeps serving', async () => {
    const { log, prefix } = makeLog<Topics>({ retention: { maxLen: 5 } });
    cleanups.push(() => log.close());
    for (let i = 0; i < 20; i++) await log.publish('t:approx', i);
    const length = await adminClient().xlen(`${prefix}{t:approx}:events`);
    expect(length).toBeGreaterThanOrEqual(5);
    expect(length).toBeLessThanOrEqual(20);
  });

  it('keeps delivering after the shared reader connection is killed', async () => {
    const name = `tlp-kill-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const url = new URL(REDIS_URL);
    const { log } = makeLog<Topics>({ redis: { host: url.hostname, port: Number(url.port || 6379), connectionName: name } });
    cleanups.push(() => log.close());
    const iter = follow(log, 't:kill');
    const first = iter.next();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await log.publish('t:kill', 1);
    expect((await first).value![1]).toBe(1);
    const second = iter.next();
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The blocked XREAD is the reader; kill every connection of this log that is blocked.
    const blocked = String(await adminClient().client('LIST'))
      .split('\n')
      .filter((line) => line.includes(` name=${name} `) && line.includes('cmd=xread'));
    expect(blocked).toHaveLength(1);
    await adminClient().client('KILL', 'ID', /\bid=(\d+)/.exec(blocked[0]!)![1]!);
    await log.publish('t:kill', 2);
    await log.publish('t:kill', 3);
    expect((await second).value![1]).toBe(2);
    expect((await iter.next()).value![1]).toBe(3);
  });

  it('after a restore from an older snapshot: cursors past it get "reset", cursors within it continue', async () => {
    const server = await startPrivateRedis();
    if (!server) {
      console.warn('\n[SKIPPED] snapshot restore test: redis-server is not installed, so there is no private Redis to count commands on.\n');
      return;
    }
    cleanups.push(() => server.stop());
    const log = createRedisEventLog<Topics>({ redis: { path: server.path }, prefix: 'p:', resetGraceMs: 300, recheckMs: 200, blockMs: 60_000 });
    cleanups.push(() => log.close());
    const admin = new Redis({ path: server.path });
    cleanups.push(() => admin.disconnect());
    const keys = ['p:{t:s}:events', 'p:{t:s}:meta'];

    const ids = [await log.publish('t:s', 1), await log.publish('t:s', 2)];
    const snapshot = await Promise.all(keys.map((key) => admin.dumpBuffer(key)));
    await log.publish('t:s', 3);
    // Suspended after its first event, this one keeps the stream in the shared reader's set throughout.
    const holder = follow(log, 't:s', ids[0]);
    expect((await holder.next()).value![1]).toBe(2);
    const ahead = follow(log, 't:s', await log.head('t:s'));
    const aheadNext = ahead.next();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await admin.del(...keys);
    await Promise.all(keys.map((key, i) => admin.restore(key, 0, snapshot[i]!)));

    // The restored log ends at event 2: a client that saw 3 is ahead of it.
    await expect(aheadNext).rejects.toBeInstanceOf(EventLogResetError);
    // A client at 2 is within the restored history: it waits, without spinning, and gets what comes next.
    const within = follow(log, 't:s', ids[1]);
    const withinNext = within.next();
    const calls = async () => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0);
    const before = await calls();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await calls()) - before).toBeLessThan(20);
    await log.publish('t:s', 30);
    expect((await withinNext).value![1]).toBe(30);
  });

  it('after a real FLUSHALL, live and resuming subscribers get "reset", never a silent skip', async () => {
    const server = await startPrivateRedis();
    if (!server) {
      console.warn('\n[SKIPPED] FLUSHALL test: redis-server is not installed, so there is no private Redis to flush.\n');
      return;
    }
    cleanups.push(() => server.stop());
    // A waiting subscriber notices a flush when something is published or at its next re-check.
    const log = createRedisEventLog<Topics>({ redis: { path: server.path }, resetGraceMs: 300, recheckMs: 200 });
    cleanups.push(() => log.close());
    const flusher = new Redis({ path: server.path });
    cleanups.push(() => flusher.disconnect());

    const ids = [await log.publish('t:f', 1), await log.publish('t:f', 2)];
    const live = follow(log, 't:f', ids[0]);
    expect((await live.next()).value![1]).toBe(2);
    const waiting = live.next();
    await flusher.flushall();
    // Nothing published since the flush: the live subscriber is ahead of the log and is reset after the grace period.
    await expect(waiting).rejects.toBeInstanceOf(EventLogResetError);
    // New events after the flush are another history; the old cursor must not silently continue into it.
    await log.publish('t:f', 1);
    await log.publish('t:f', 2);
    await log.publish('t:f', 3);
    await expect(follow(log, 't:f', ids[1]).next()).rejects.toBeInstanceOf(EventLogResetError);
    await expect(follow(log, 't:f', ids[0]).next()).rejects.toBeInstanceOf(EventLogResetError);
  });
});
