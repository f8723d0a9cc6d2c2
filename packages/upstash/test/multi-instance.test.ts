import { createTRPCClient, httpBatchLink } from '@trpc/client';
import { isLongPollCursorError } from '@trpc-longpoll/client';
import { createUpstashEventLog } from '@trpc-longpoll/upstash';
import { Redis } from 'ioredis';
import superjson from 'superjson';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createLongPollClient,
  createRoomRouter,
  deleteKeys,
  recorder,
  REDIS_URL,
  redisAvailable,
  startProxy,
  startServer,
  uniquePrefix,
  useCleanup,
  waitFor,
  type RoomEvent,
  type RoomRouter,
  type RoomTopics,
} from '@trpc-longpoll/e2e';
import { startUpstashRest } from './fixture/upstashRest';

const available = await redisAvailable('@trpc-longpoll/upstash multi-instance test');

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

describe.skipIf(!available)('two instances on the Upstash REST log behind a round-robin proxy', () => {
  const cleanup = useCleanup();
  const prefix = uniquePrefix('upstash-multi');
  const admin = available ? new Redis(REDIS_URL) : undefined;
  afterAll(async () => {
    if (!admin) return;
    await deleteKeys(admin, prefix);
    admin.disconnect();
  });

  it('every client gets every event once, in order; no request and no connection while no subscription runs', async () => {
    // Connection: close on every answer, so nothing of either instance outlives a request.
    const rest = await startUpstashRest({ redis: REDIS_URL, closeConnections: true });
    cleanup(() => rest.close());
    const instances = await Promise.all(
      ['a', 'b'].map(async (name) => {
        const log = createUpstashEventLog<RoomTopics>({ redis: { url: rest.url, token: rest.token }, prefix });
        const server = await startServer({ router: createRoomRouter(log, name), holdMs: 1_000, idleTimeoutMs: 1_500 });
        cleanup(() => log.close());
        cleanup(() => server.close());
        return { log, server };
      }),
    );
    const [a, b] = instances as [(typeof instances)[0], (typeof instances)[0]];
    const runs = () => a.server.longPoll.stats().runs.total + b.server.longPoll.stats().runs.total;
    // One round-robin proxy per client, so each client's own requests strictly alternate between the instances.
    const proxies = await Promise.all([0, 1].map(() => startProxy({ upstreams: [a.server.url, b.server.url] })));
    for (const proxy of proxies) cleanup(() => proxy.close());

    const clients = await Promise.all(
      proxies.map(async (proxy) => {
        const client = createLongPollClient<RoomRouter>(proxy.url, { retry: { initialDelayMs: 50, maxDelayMs: 400 } });
        const lastEventId = await client.head.query({ room: 'r' });
        return { client, lastEventId, rec: recorder() };
      }),
    );
    // Heads are taken; nothing subscribes yet: the logs are silent.
    const idleStart = rest.requests();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(rest.requests()).toBe(idleStart);

    const subscriptions = clients.map(({ client, lastEventId, rec }) => client.onRoom.subscribe({ room: 'r', lastEventId }, rec.callbacks));
    for (const sub of subscriptions) cleanup(() => sub.unsubscribe());
    await Promise.all(clients.map(({ rec }) => rec.untilStarted({ ms: 10_000 })));
    const viaA = publisher(a.server.url);
    const viaB = publisher(b.server.url);
    await Promise.all(
      [viaA, viaB].map(async (via, i) => {
        for (let n = 0; n < 12; n++) {
          await via.publish.mutate({ room: 'r', text: `${i}-${n}`, publisher: `p${i}` });
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }),
    );
    const truth = await logContents(admin!, prefix, 'r');
    expect(truth).toHaveLength(24);
    for (const { rec } of clients) {
      await rec.untilData(truth.length, { ms: 15_000 });
      // Exactly the log, in the log's order: nothing lost, nothing twice.
      expect(rec.data()).toEqual(truth);
      expect(rec.errors().filter(isLongPollCursorError)).toEqual([]);
    }
    expect(new Set(truth.map((e) => e.data.via))).toEqual(new Set(['a', 'b']));
    // Both instances served polls (POST to the endpoint itself), so both logs followed the room.
    for (const { server } of instances) expect(server.requests.filter((path) => path === '/').length).toBeGreaterThan(2);

    for (const sub of subscriptions) sub.unsubscribe();
    // Runs left behind on the instance a client polled last end at the idle timeout.
    await waitFor(() => runs() === 0, 15_000, 'every run to end');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const quietFrom = rest.requests();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(rest.requests()).toBe(quietFrom);
    expect(rest.openSockets()).toBe(0);
    expect(a.log.requests() + b.log.requests()).toBe(quietFrom);
  }, 60_000);
});
