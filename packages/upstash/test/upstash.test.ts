import type { TrackedEnvelope } from '@trpc/server';
import { EventLogGoneError, isBookmark, type EventLog } from '@trpc-longpoll/server';
import { createRedisEventLog } from '@trpc-longpoll/redis';
import { createUpstashEventLog, type UpstashEventLog, type UpstashEventLogOptions } from '@trpc-longpoll/upstash';
import { Redis as UpstashRedis } from '@upstash/redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, deleteKeys, eventLogSuite, redisAvailable, uniquePrefix, useCleanup } from '@trpc-longpoll/e2e';
// The server marks a run's signal this way; the marks are global symbols, so the source module is the real thing.
import { markBookmarks } from '../../server/src/log/bookmarks';
import { startUpstashRest, type UpstashRestFixture } from './fixture/upstashRest';

const available = await redisAvailable('@trpc-longpoll/upstash tests');
const runPrefix = uniquePrefix('upstash');
let rest: UpstashRestFixture;
let admin: Redis;

beforeAll(async () => {
  if (!available) return;
  rest = await startUpstashRest({ redis: REDIS_URL });
  admin = new Redis(REDIS_URL);
});
afterAll(async () => {
  if (!available) return;
  await deleteKeys(admin, runPrefix);
  admin.disconnect();
  await rest.close();
});

let logCount = 0;
function makeLog<T extends Record<string, unknown>>(overrides: Partial<UpstashEventLogOptions> = {}): { log: UpstashEventLog<T>; prefix: string } {
  const prefix = `${runPrefix}${++logCount}:`;
  const log = createUpstashEventLog<T>({ redis: { url: rest.url, token: rest.token }, prefix, ...overrides });
  return { log, prefix };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const prefixes = new WeakMap<EventLog<any>, string>();

describe.skipIf(!available)('Upstash REST event log', () => {
  eventLogSuite('Upstash REST', {
    create: async ({ maxEvents, resetGraceMs }) => {
      const { log, prefix } = makeLog({ retention: { maxLen: maxEvents, exact: true }, resetGraceMs });
      prefixes.set(log, prefix);
      return log;
    },
    aheadOf: (id) => id.replace(/-(\d+)$/, (_, n: string) => `-${Number(n) + 1}`),
    // What FLUSHALL does to this log: every key it owns disappears.
    forget: async (log) => {
      await deleteKeys(admin, prefixes.get(log)!);
      return log;
    },
  });

  type Topics = { [K: `t:${string}`]: number };
  const cleanup = useCleanup();

  function follow(log: EventLog<Topics>, topic: `t:${string}`, lastEventId?: string | null, signal?: AbortSignal) {
    const controller = new AbortController();
    signal?.addEventListener('abort', () => controller.abort());
    const iter = log.subscribe(topic, { lastEventId, signal: signal ?? controller.signal })[Symbol.asyncIterator]();
    const stop = () => {
      controller.abort();
      void iter.return?.(undefined);
    };
    cleanup(stop);
    return { iter, stop };
  }

  /** A signal as the server hands it to a run whose client takes bookmarks, recording the claim's calls. */
  function bookmarkSignal() {
    const controller = new AbortController();
    const calls: string[] = [];
    markBookmarks(controller.signal, { claim: () => calls.push('claim'), settle: () => calls.push('settle') });
    cleanup(() => controller.abort());
    return { signal: controller.signal, calls };
  }

  it('keeps the Redis log format: what one writes, the other follows, on the same keys', async () => {
    const { log: rest, prefix } = makeLog<Topics>();
    cleanup(() => rest.close());
    const tcp = createRedisEventLog<Topics>({ redis: REDIS_URL, prefix });
    cleanup(() => tcp.close());

    const fromRest = follow(tcp, 't:x', await rest.head('t:x'));
    const fromTcp = follow(rest, 't:x', await tcp.head('t:x'));
    const ids = [await rest.publish('t:x', 1), await tcp.publish('t:x', 2)];
    for (const { iter } of [fromRest, fromTcp]) {
      const got = [(await iter.next()).value!, (await iter.next()).value!];
      expect(got.map(([id, n]) => [id, n])).toEqual([
        [ids[0], 1],
        [ids[1], 2],
      ]);
    }
  });

  it('sends nothing while no subscription waits; the topics that wait share their requests', async () => {
    const { log } = makeLog<Topics>();
    cleanup(() => log.close());
    log.cluster.listen(() => {});
    await sleep(1_200);
    expect(log.requests()).toBe(0);

    const subscriptions = await Promise.all(Array.from({ length: 30 }, async (_, i) => follow(log, `t:${i % 15}`, await log.head(`t:${i % 15}`))));
    const firsts = subscriptions.map(({ iter }) => iter.next());
    await sleep(200);
    const before = { requests: log.requests(), reads: rest.commands().evalsha ?? 0 };
    await sleep(3_000);
    const polls = log.requests() - before.requests;
    // Each poll also reads the cluster channel once (a listener is registered).
    const topicReads = (rest.commands().evalsha ?? 0) - before.reads - polls;
    // With pauses doubling from 50 ms to 1 s, 3 s of quiet is about 5 reads of each of the 15 topics
    // (60 without backoff), made together: a handful of requests, each reading many topics.
    expect(polls).toBeGreaterThan(0);
    expect(polls).toBeLessThanOrEqual(20);
    expect(topicReads).toBeGreaterThanOrEqual(2 * 15);
    expect(topicReads).toBeGreaterThanOrEqual(5 * polls);

    await log.publish('t:3', 3);
    expect((await firsts[3]!).value![1]).toBe(3);
    expect((await firsts[18]!).value![1]).toBe(3);
    for (const { stop } of subscriptions) stop();
    await sleep(100);
    const after = log.requests();
    await sleep(1_500);
    expect(log.requests()).toBe(after);
  }, 20_000);

  it('each waited-on topic backs off on its own: a busy topic does not make its quiet neighbours read more', async () => {
    const { log } = makeLog<Topics>();
    cleanup(() => log.close());
    const quiet = await Promise.all(Array.from({ length: 20 }, async (_, i) => follow(log, `t:q${i}`, await log.head(`t:q${i}`))));
    for (const { iter } of quiet) void iter.next();
    const hot = follow(log, 't:hot', await log.head('t:hot')).iter;
    const reads = () => rest.commands().evalsha ?? 0;
    const before = reads();
    let received = 0;
    for (let n = 0; n < 30; n++) {
      const next = hot.next();
      await log.publish('t:hot', n);
      expect((await next).value![1]).toBe(n);
      received++;
      await sleep(100);
    }
    expect(received).toBe(30);
    // 30 publishes, a read or two per hot event, and each quiet topic backing off to one read a second
    // (7 reads in its first 3 s): about 230. Polling every quiet topic at the hot topic's pace would be over 600.
    expect(reads() - before).toBeLessThan(400);
  });

  it('a cursor at the newest event stays valid when age retention drops that event; an older one is "gone"', async () => {
    const { log } = makeLog<Topics>({ retention: { maxAgeMs: 200, exact: true } });
    cleanup(() => log.close());
    const ids = [await log.publish('t:age', 1), await log.publish('t:age', 2)];
    const waiting = follow(log, 't:age', ids[1]).iter.next();
    await sleep(400);
    // This publish trims events 1 and 2 (older than 200 ms).
    await log.publish('t:age', 3);
    expect((await waiting).value![1]).toBe(3);
    await expect(follow(log, 't:age', ids[0]).iter.next()).rejects.toBeInstanceOf(EventLogGoneError);
    expect((await follow(log, 't:age', ids[1]).iter.next()).value![1]).toBe(3);
  });

  describe('bookmarks', () => {
    it('from now: the start position comes first as a bookmark (the id head() gives), then the claim settles', async () => {
      const { log } = makeLog<Topics>();
      cleanup(() => log.close());
      await log.publish('t:b', 1);
      const head = await log.head('t:b');
      const { signal, calls } = bookmarkSignal();
      const { iter } = follow(log, 't:b', null, signal);
      const first = await iter.next();
      expect(calls).toEqual(['claim']);
      expect(isBookmark(first.value)).toBe(true);
      expect(first.value![0]).toBe(head);
      const next = iter.next();
      expect(calls).toEqual(['claim', 'settle']);
      const id = await log.publish('t:b', 2);
      expect((await next).value).toEqual([id, 2, expect.anything()]);
    });

    it('with a lastEventId: the claim settles before the first await, and no start bookmark', async () => {
      const { log } = makeLog<Topics>();
      cleanup(() => log.close());
      const start = await log.head('t:c');
      const { signal, calls } = bookmarkSignal();
      const { iter } = follow(log, 't:c', start, signal);
      const next = iter.next();
      expect(calls).toEqual(['claim', 'settle']);
      const id = await log.publish('t:c', 1);
      expect((await next).value![0]).toBe(id);
    });

    it('repeats a moved position once per interval, also while idle; never without a claim', async () => {
      const { log } = makeLog<Topics>({ bookmarkIntervalMs: 300 });
      cleanup(() => log.close());
      const start = await log.head('t:d');
      const marked = follow(log, 't:d', start, bookmarkSignal().signal).iter;
      const plain = follow(log, 't:d', start).iter;
      const id1 = await log.publish('t:d', 1);
      expect((await marked.next()).value![0]).toBe(id1);
      // Idle after event 1: a bookmark for it falls due after the interval.
      const later = await marked.next();
      expect(isBookmark(later.value)).toBe(true);
      expect(later.value![0]).toBe(id1);
      // The position has not moved since: the next item is the next event, not another bookmark.
      const next = marked.next();
      await sleep(700);
      const id2 = await log.publish('t:d', 2);
      expect((await next).value).toEqual([id2, 2, expect.anything()]);
      const plainItems = [(await plain.next()).value!, (await plain.next()).value!] as TrackedEnvelope<number>[];
      expect(plainItems.map((item) => item[1])).toEqual([1, 2]);
    });
  });

  it('cluster: an instance hears the others on the polls it makes anyway and when it sends; listening alone sends nothing', async () => {
    const { log: a, prefix } = makeLog<Topics>({ pollIntervalMs: 200 });
    const b = createUpstashEventLog<Topics>({ redis: { url: rest.url, token: rest.token }, prefix, pollIntervalMs: 200 });
    cleanup(() => a.close());
    cleanup(() => b.close());
    const heard = { a: [] as string[], b: [] as string[] };
    a.cluster.listen((message) => heard.a.push(message));
    b.cluster.listen((message) => heard.b.push(message));
    await sleep(300);
    expect(a.requests() + b.requests()).toBe(0);
    const until = async (check: () => boolean) => {
      const deadline = Date.now() + 10_000;
      while (!check() && Date.now() < deadline) await sleep(50);
    };

    // b polls for a waiting subscription, and reads the channel as it does.
    void follow(b, 't:cl', await b.head('t:cl')).iter.next();
    await sleep(400);
    a.cluster.send('drop client-1');
    a.cluster.send('x'.repeat(900));
    await until(() => heard.b.length >= 2);
    expect(heard.b).toEqual(['drop client-1', 'x'.repeat(900)]);

    // a has no subscription, so it never polls. Its first send (one request for both messages) also found
    // where the channel ends, between them; its next send brings everything after that.
    expect(a.requests()).toBe(1);
    expect(heard.a).toEqual([]);
    b.cluster.send('hello from b');
    await until(() => heard.b.length >= 3);
    a.cluster.send('hello from a');
    await until(() => heard.a.includes('hello from a'));
    expect(heard.a).toEqual(['x'.repeat(900), 'hello from b', 'hello from a']);
  });

  it('the fixture answers as Upstash does: 401 for a wrong token, 400 for a bad body or a blocking command', async () => {
    const post = (path: string, body: string, token = rest.token) =>
      fetch(`${rest.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'upstash-encoding': 'base64' }, body });
    expect((await post('/', '["PING"]', 'wrong')).status).toBe(401);
    expect((await post('/', '{not json')).status).toBe(400);
    expect((await post('/pipeline', '[["PING"], {"a": 1}]')).status).toBe(400);
    expect((await post('/', '["BLPOP", "k", "1"]')).status).toBe(400);
    expect(await (await post('/', '["ECHO", "hé"]')).json()).toEqual({ result: Buffer.from('hé').toString('base64') });

    const { log } = makeLog<Topics>({ redis: { url: rest.url, token: 'wrong' } });
    cleanup(() => log.close());
    await expect(log.publish('t:auth', 1)).rejects.toThrow(/Unauthorized/);
  });

  it('REST API gone: a waiting subscription fails (no hang) and the cursor resumes through another endpoint', async () => {
    const down = await startUpstashRest({ redis: REDIS_URL });
    const client = new UpstashRedis({ url: down.url, token: down.token, automaticDeserialization: false, retry: false });
    const { log, prefix } = makeLog<Topics>({ redis: client });
    cleanup(() => log.close());
    const id1 = await log.publish('t:down', 1);
    const waiting = follow(log, 't:down', id1).iter.next();
    await sleep(100);
    await down.close();
    await expect(waiting).rejects.toThrow();

    const { log: again } = makeLog<Topics>({ prefix });
    cleanup(() => again.close());
    await again.publish('t:down', 2);
    expect((await follow(again, 't:down', id1).iter.next()).value![1]).toBe(2);
  });

  it('refuses a client that would parse stored text as JSON, and bad options, with a TypeError', () => {
    const parsing = new UpstashRedis({ url: rest.url, token: rest.token });
    expect(() => createUpstashEventLog({ redis: parsing })).toThrow(TypeError);
    const raw = new UpstashRedis({ url: rest.url, token: rest.token, automaticDeserialization: false });
    expect(() => createUpstashEventLog({ redis: raw })).not.toThrow();
    expect(() => createUpstashEventLog({ redis: { url: rest.url } as never })).toThrow(TypeError);
    expect(() => createUpstashEventLog({ redis: null as never })).toThrow(TypeError);
    expect(() => createUpstashEventLog({ redis: raw, bookmarkIntervalMs: 0 })).toThrow(TypeError);
    expect(() => createUpstashEventLog({ redis: raw, pollIntervalMs: -1 })).toThrow(TypeError);
  });
});
