import { createTRPCClient, httpBatchLink } from '@trpc/client';
import { isLongPollCursorError } from '@trpc-longpoll/client';
import { Redis, type RedisOptions } from 'ioredis';
import superjson from 'superjson';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createLongPollClient,
  deleteKeys,
  recorder,
  REDIS_URL,
  redisAvailable,
  startPrivateRedis,
  startInstance,
  startProxy,
  uniquePrefix,
  useCleanup,
  waitFor,
  type RoomEvent,
  type RoomRouter,
} from '../src';

const available = await redisAvailable('multi-instance tests');

function publisher(url: string) {
  return createTRPCClient<RoomRouter>({ links: [httpBatchLink({ url, transformer: superjson })] });
}

/** What the log holds for a room, read straight from Redis: the truth every client must match. */
async function logContents(redis: Redis, prefix: string, room: string): Promise<{ id: string; data: RoomEvent }[]> {
  const base = `${prefix}{room:${room}}`;
  const epoch = await redis.hget(`${base}:meta`, 'epoch');
  const entries = await redis.xrange(`${base}:events`, '-', '+');
  return entries.map(([id, fields]) => ({ id: `${epoch}:${id}`, data: JSON.parse(fields[fields.indexOf('d') + 1]!) as RoomEvent }));
}

describe.skipIf(!available)('several instances behind a round-robin proxy, no sticky sessions', () => {
  const cleanup = useCleanup();
  const prefix = uniquePrefix('multi');
  const admin = available ? new Redis(REDIS_URL) : undefined;
  afterAll(async () => {
    if (!admin) return;
    await deleteKeys(admin, prefix);
    admin.disconnect();
  });

  it('every client gets every event exactly once, in order, also after kill -9 of one instance', async () => {
    const env = { REDIS_URL, LOG_PREFIX: prefix, HOLD_MS: '2000' };
    const [a, b] = await Promise.all([startInstance({ ...env, INSTANCE: 'a' }), startInstance({ ...env, INSTANCE: 'b' })]);
    cleanup(() => a.stop());
    cleanup(() => b.stop());
    // One round-robin proxy per client, so each client's own requests strictly alternate between the instances.
    const proxies = await Promise.all(Array.from({ length: 3 }, () => startProxy({ upstreams: [a.url, b.url] })));
    for (const proxy of proxies) cleanup(() => proxy.close());

    const clients = await Promise.all(
      proxies.map(async (proxy) => {
        const client = createLongPollClient<RoomRouter>(proxy.url, { retry: { initialDelayMs: 50, maxDelayMs: 400 } });
        // Start from a position in the log, not from "whenever the first instance runs the procedure".
        const lastEventId = await client.head.query({ room: 'r' });
        const rec = recorder();
        const sub = client.onRoom.subscribe({ room: 'r', lastEventId }, rec.callbacks);
        cleanup(() => sub.unsubscribe());
        return rec;
      }),
    );
    await Promise.all(clients.map((rec) => rec.untilStarted({ ms: 10_000 })));
    const requestsBefore = proxies.map((proxy) => proxy.requests());

    // Publishers on both instances at once.
    const viaA = publisher(a.url);
    const viaB = publisher(b.url);
    await Promise.all([
      (async () => {
        for (let i = 0; i < 15; i++) await viaA.publish.mutate({ room: 'r', text: `a${i}`, publisher: 'pa' });
      })(),
      (async () => {
        for (let i = 0; i < 15; i++) await viaB.publish.mutate({ room: 'r', text: `b${i}`, publisher: 'pb' });
      })(),
    ]);
    for (const rec of clients) await rec.untilData(30, { ms: 15_000 });
    // Each client polled several times meanwhile, alternating between the instances.
    for (const [i, proxy] of proxies.entries()) expect(proxy.requests() - requestsBefore[i]!).toBeGreaterThanOrEqual(2);

    // Mid-stream, instance a dies without a word; the load balancer notices a little later.
    let published = 0;
    const publishing = (async () => {
      for (let i = 0; i < 30; i++) {
        await viaB.publish.mutate({ room: 'r', text: `late${i}`, publisher: 'pb' });
        published++;
        await new Promise((resolve) => setTimeout(resolve, 15));
      }
    })();
    await waitFor(() => published >= 8, 10_000, 'publishing to start');
    await a.crash();
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const proxy of proxies) proxy.setUpstreams([b.url]);
    await publishing;

    const truth = await logContents(admin!, prefix, 'r');
    expect(truth).toHaveLength(60);
    for (const rec of clients) {
      await rec.untilData(truth.length, { ms: 15_000 });
      // Exactly the log, in the log's order: nothing lost, nothing twice.
      expect(rec.data()).toEqual(truth);
      expect(rec.errors().filter(isLongPollCursorError)).toEqual([]);
    }
    expect(new Set(truth.map((e) => e.data.via))).toEqual(new Set(['a', 'b']));
  }, 60_000);

  it('Redis crashes and comes back: clients carry on from their cursors, nothing lost or duplicated', async () => {
    // A private, persistent Redis that the test can kill -9 and restart.
    const server = await startPrivateRedis({ appendOnly: true });
    if (!server) {
      console.warn('\n[SKIPPED] multi-instance Redis crash: redis-server is not installed, so there is no private Redis to crash.\n');
      return;
    }
    cleanup(() => server.stop());
    const env = { REDIS_PATH: server.path, LOG_PREFIX: 'o:', HOLD_MS: '2000' };
    const [a, b] = await Promise.all([startInstance({ ...env, INSTANCE: 'a' }), startInstance({ ...env, INSTANCE: 'b' })]);
    cleanup(() => a.stop());
    cleanup(() => b.stop());
    const proxies = await Promise.all([0, 1].map(() => startProxy({ upstreams: [a.url, b.url] })));
    for (const proxy of proxies) cleanup(() => proxy.close());
    const clients = await Promise.all(
      proxies.map(async (proxy) => {
        const client = createLongPollClient<RoomRouter>(proxy.url, { retry: { initialDelayMs: 50, maxDelayMs: 400 } });
        const lastEventId = await client.head.query({ room: 'o' });
        const rec = recorder();
        cleanup(client.onRoom.subscribe({ room: 'o', lastEventId }, rec.callbacks).unsubscribe);
        return rec;
      }),
    );
    for (let i = 0; i < 5; i++) await publisher(a.url).publish.mutate({ room: 'o', text: `before${i}`, publisher: 'p' });
    for (const rec of clients) await rec.untilData(5, { ms: 10_000 });

    await server.crash();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await server.restart();
    for (let i = 0; i < 5; i++) await publisher(b.url).publish.mutate({ room: 'o', text: `after${i}`, publisher: 'p' });

    const redis = new Redis({ path: server.path });
    cleanup(() => redis.disconnect());
    const truth = await logContents(redis, 'o:', 'o');
    expect(truth.map((e) => e.data.text)).toEqual([0, 1, 2, 3, 4].map((i) => `before${i}`).concat([0, 1, 2, 3, 4].map((i) => `after${i}`)));
    for (const rec of clients) {
      await rec.untilData(10, { ms: 15_000 });
      expect(rec.data()).toEqual(truth);
      expect(rec.errors().filter(isLongPollCursorError)).toEqual([]);
    }
  }, 60_000);

  it('a client away longer than retention gets "gone"; after FLUSHALL a live client gets "reset"', async () => {
    // A private Redis, so FLUSHALL cannot touch what other tests keep in the shared one.
    const server = await startPrivateRedis();
    if (!server) {
      console.warn('\n[SKIPPED] multi-instance gone/reset: redis-server is not installed, so there is no private Redis to flush.\n');
      return;
    }
    cleanup(() => server.stop());
    const env = { REDIS_PATH: server.path, LOG_PREFIX: 'gr:', MAX_LEN: '5', RESET_GRACE_MS: '500', RECHECK_MS: '300', HOLD_MS: '2000' };
    const [a, b] = await Promise.all([startInstance({ ...env, INSTANCE: 'a' }), startInstance({ ...env, INSTANCE: 'b' })]);
    cleanup(() => a.stop());
    cleanup(() => b.stop());
    const proxy = await startProxy({ upstreams: [a.url, b.url] });
    cleanup(() => proxy.close());
    const pub = publisher(proxy.url);
    const client = createLongPollClient<RoomRouter>(proxy.url, { retry: { initialDelayMs: 50, maxDelayMs: 400 } });

    // Away: the client saw event 1, then 7 more were published while it was gone; only 5 are kept.
    const first = await pub.publish.mutate({ room: 'g', text: 'g1', publisher: 'p' });
    for (let i = 2; i <= 8; i++) await pub.publish.mutate({ room: 'g', text: `g${i}`, publisher: 'p' });
    const away = recorder();
    cleanup(client.onRoom.subscribe({ room: 'g', lastEventId: first }, away.callbacks).unsubscribe);
    const gone = await away.firstError({ ms: 10_000 });
    expect(isLongPollCursorError(gone) && gone.reason).toBe('gone');
    expect(gone.data?.code).toBe('CONFLICT');
    expect(away.data()).toEqual([]);

    // Live through the flush.
    const live = recorder();
    const head = await client.head.query({ room: 'f' });
    cleanup(client.onRoom.subscribe({ room: 'f', lastEventId: head }, live.callbacks).unsubscribe);
    await live.untilStarted({ ms: 10_000 });
    await pub.publish.mutate({ room: 'f', text: 'f1', publisher: 'p' });
    await pub.publish.mutate({ room: 'f', text: 'f2', publisher: 'p' });
    await live.untilData(2, { ms: 10_000 });
    const flusher = new Redis({ path: server.path } satisfies RedisOptions);
    cleanup(() => flusher.disconnect());
    await flusher.flushall();
    const reset = await live.firstError({ ms: 10_000 });
    expect(isLongPollCursorError(reset) && reset.reason).toBe('reset');
    expect(live.data()).toHaveLength(2);
  }, 60_000);
});
