import { createTRPCClient, httpBatchLink } from '@trpc/client';
import { isLongPollCursorError } from '@trpc-longpoll/client';
import { createRedisEventLog } from '@trpc-longpoll/redis';
import { Redis } from 'ioredis';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import {
  createLongPollClient,
  deleteKeys,
  recorder,
  REDIS_URL,
  redisAvailable,
  startInstance,
  startProxy,
  uniquePrefix,
  useCleanup,
  type Fault,
  type InstanceProcess,
  type Recorder,
  type RoomEvent,
  type RoomRouter,
  type RoomTopics,
} from '../src';

/**
 * Three instances sharing the Redis log behind a balancer that knows nothing
 * of clients (docs/scaling.md): "from now" subscriptions lose nothing, a
 * client's procedures run on about one instance at a time and stop on every
 * instance when it leaves, and untracked subscriptions either work (affinity)
 * or fail once, saying why.
 */
const available = await redisAvailable('balancer tests');
const cleanup = useCleanup();

async function cluster(label: string, extraEnv: Record<string, string> = {}) {
  const prefix = uniquePrefix(label);
  const env = { REDIS_URL, LOG_PREFIX: prefix, HOLD_MS: '1000', ...extraEnv };
  const instances = await Promise.all(['a', 'b', 'c'].map((name) => startInstance({ ...env, INSTANCE: name })));
  const log = createRedisEventLog<RoomTopics>({ redis: REDIS_URL, prefix });
  cleanup(async () => {
    await log.close();
    await Promise.all(instances.map((instance) => instance.stop()));
    const redis = new Redis(REDIS_URL);
    await deleteKeys(redis, prefix);
    redis.disconnect();
  });
  return { instances, log };
}

/** Procedures running on each instance, asked of the instance itself (not through the balancer). */
async function runsOn(instances: InstanceProcess[]): Promise<number[]> {
  return Promise.all(
    instances.map(async (instance) => {
      const stats = await createTRPCClient<RoomRouter>({ links: [httpBatchLink({ url: instance.url, transformer: superjson })] }).stats.query();
      return stats!.runs.total;
    }),
  );
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** Publishes to `rooms` in turn, one event at a time, noting when each publish began. */
function startPublishing(log: ReturnType<typeof createRedisEventLog<RoomTopics>>, rooms: string[], everyMs: number) {
  const published = new Map<string, { id: string; startedAt: number }[]>(rooms.map((room) => [room, []]));
  let running = true;
  const done = (async () => {
    for (let n = 0; running; n++) {
      const room = rooms[n % rooms.length]!;
      const startedAt = Date.now();
      const id = await log.publish(`room:${room}`, { text: `e${n}`, publisher: 'test', via: 'test' });
      published.get(room)!.push({ id, startedAt });
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  const stop = async () => {
    running = false;
    await done;
  };
  // Stopped before the log closes (cleanups run last first), also when a test fails before stopping it.
  cleanup(stop);
  return { published, stop };
}

describe.skipIf(!available)('three instances behind a round-robin balancer', () => {
  it('"from now" subscriptions miss nothing published after onStarted, through faults and a kill -9, with none duplicated or reordered', async () => {
    const { instances, log } = await cluster('from-now');
    let faults = 0;
    const fault = ({ n, path }: { n: number; path: string }): Fault | undefined => {
      if (!path.startsWith('/?') || n % 7 !== 3) return undefined;
      faults++;
      return ([{ kind: 'drop-response' }, { kind: 'cut-mid-body' }, { kind: 'status', status: 502 }] as const)[n % 3];
    };
    const proxy = await startProxy({ upstreams: instances.map((instance) => instance.url), fault });
    cleanup(() => proxy.close());
    const rooms = ['r0', 'r1', 'r2'];
    // Events flow from the first millisecond, before and while the subscriptions start.
    const publisher = startPublishing(log, rooms, 5);
    const subscriptions: { room: string; startedAt: number; rec: Recorder<{ id: string; data: RoomEvent }> }[] = [];
    for (let c = 0; c < 6; c++) {
      const trpc = createLongPollClient<RoomRouter>(proxy.url, { retry: { initialDelayMs: 20, maxDelayMs: 200 } });
      for (const room of rooms) {
        const rec = recorder<{ id: string; data: RoomEvent }>();
        // The first onStarted: a subscription that recovers from a failure is started again.
        const entry = { room, startedAt: Infinity, rec };
        const sub = trpc.onRoom.subscribe({ room }, { ...rec.callbacks, onStarted: () => ((entry.startedAt = Math.min(entry.startedAt, Date.now())), rec.callbacks.onStarted()) });
        cleanup(() => sub.unsubscribe());
        subscriptions.push(entry);
      }
    }
    for (const { rec } of subscriptions) await rec.untilStarted({ ms: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await instances[1]!.crash();
    proxy.setUpstreams([instances[0]!.url, instances[2]!.url]);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await publisher.stop();

    for (const { room, startedAt, rec } of subscriptions) {
      const all = publisher.published.get(room)!;
      const due = all.filter((event) => event.startedAt > startedAt).map((event) => event.id);
      const last = all.at(-1)!.id;
      await rec.until(() => rec.data().some((event) => event.id === last), 15_000, `the last event on ${room}`);
      const received = rec.data().map((event) => event.id);
      // What it got is one stretch of the log, in order, ending at the end: nothing skipped, nothing twice.
      const first = all.findIndex((event) => event.id === received[0]);
      expect(first).toBeGreaterThanOrEqual(0);
      expect(received).toEqual(all.slice(first).map((event) => event.id));
      expect(received.slice(-due.length)).toEqual(due);
      expect(rec.errors()).toEqual([]);
    }
    expect(faults).toBeGreaterThan(5);
  }, 60_000);

  it("a client's procedures run on about one instance at a time, and stop on every instance within 2 s of its last unsubscribe", async () => {
    const { instances, log } = await cluster('cleanup');
    const proxy = await startProxy({ upstreams: instances.map((instance) => instance.url) });
    cleanup(() => proxy.close());
    const publisher = startPublishing(log, ['k0', 'k1'], 20);
    const subs: { unsubscribe(): void }[] = [];
    const recs: Recorder[] = [];
    for (let c = 0; c < 5; c++) {
      const trpc = createLongPollClient<RoomRouter>(proxy.url);
      for (const room of ['k0', 'k1']) {
        const rec = recorder();
        subs.push(trpc.onRoom.subscribe({ room }, rec.callbacks));
        recs.push(rec);
      }
    }
    for (const rec of recs) await rec.untilData(3, { ms: 10_000 });
    const samples: number[] = [];
    for (let i = 0; i < 15; i++) {
      samples.push(sum(await runsOn(instances)));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    samples.sort((a, b) => a - b);
    // Behind round robin every instance used to keep every subscription's run: 3 × 10.
    expect(samples[Math.floor(samples.length / 2)]!).toBeLessThanOrEqual(15);

    for (const sub of subs) sub.unsubscribe();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(await runsOn(instances)).toEqual([0, 0, 0]);
    await publisher.stop();
  }, 60_000);

  it('an untracked subscription fails once with `no-affinity`, naming the fix, instead of losing events', async () => {
    const { instances, log } = await cluster('untracked-rr');
    const proxy = await startProxy({ upstreams: instances.map((instance) => instance.url) });
    cleanup(() => proxy.close());
    // Instances started together know each other once they have greeted (within a second or so).
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const publisher = startPublishing(log, ['u'], 20);
    const recs = [0, 1, 2].map(() => {
      const rec = recorder();
      const sub = createLongPollClient<RoomRouter>(proxy.url).onRoomUntracked.subscribe({ room: 'u' }, rec.callbacks);
      cleanup(() => sub.unsubscribe());
      return rec;
    });
    for (const rec of recs) {
      const error = await rec.firstError({ ms: 10_000 });
      expect(isLongPollCursorError(error) && error.reason).toBe('no-affinity');
      expect(error.message).toContain('lp_affinity');
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const rec of recs) expect(rec.errors()).toHaveLength(1);
    await publisher.stop();
  }, 60_000);

  it('with the balancer hashing on lp_affinity, untracked subscriptions get every event and no error', async () => {
    const { instances, log } = await cluster('untracked-hash');
    const proxy = await startProxy({ upstreams: instances.map((instance) => instance.url), balance: { hashQuery: 'lp_affinity' } });
    cleanup(() => proxy.close());
    const recs = [0, 1, 2, 3].map(() => {
      const rec = recorder<RoomEvent>();
      const sub = createLongPollClient<RoomRouter>(proxy.url).onRoomUntracked.subscribe({ room: 'h' }, rec.callbacks);
      cleanup(() => sub.unsubscribe());
      return rec;
    });
    for (const rec of recs) await rec.untilStarted({ ms: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const publisher = startPublishing(log, ['h'], 10);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await publisher.stop();
    const texts = publisher.published.get('h')!.length;
    for (const rec of recs) {
      await rec.untilData(texts, { ms: 10_000 });
      expect(rec.data().map((event) => event.text)).toEqual(Array.from({ length: texts }, (_, n) => `e${n}`));
      expect(rec.errors()).toEqual([]);
    }
  }, 60_000);
});
