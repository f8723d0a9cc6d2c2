import { createTRPCClient, httpBatchLink } from '@trpc/client';
import { isLongPollCursorError } from '@trpc-longpoll/client';
import superjson from 'superjson';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createLongPollClient,
  DATABASE_URL,
  dropSchemas,
  postgresAvailable,
  recorder,
  sql,
  startInstance as startSharedInstance,
  startProxy,
  uniqueSchema,
  useCleanup,
  waitFor,
  type RoomEvent,
  type RoomRouter,
} from '../src';

const available = await postgresAvailable('multi-instance tests on PostgreSQL');
/** An instance of `src/instance.ts` on the PostgreSQL log. */
const startInstance = (env: Record<string, string>) => startSharedInstance({ ...env, LONGPOLL_LOG: 'postgres' });

function publisher(url: string) {
  return createTRPCClient<RoomRouter>({ links: [httpBatchLink({ url, transformer: superjson })] });
}

/** What the log holds for a room, read straight from its tables: the truth every client must match. */
async function logContents(schema: string, room: string): Promise<{ id: string; data: RoomEvent }[]> {
  const rows = await sql<{ id: string; data: string }>(
    `SELECT m.epoch || ':' || e.n AS id, e.data FROM ${schema}.events e, ${schema}.meta m WHERE e.topic = $1 ORDER BY e.n`,
    [`room:${room}`],
  );
  return rows.map((row) => ({ id: row.id, data: JSON.parse(row.data) as RoomEvent }));
}

describe.skipIf(!available)('several instances on the PostgreSQL log behind a round-robin proxy, no sticky sessions', () => {
  const cleanup = useCleanup();
  const schema = uniqueSchema('multi');
  afterAll(async () => {
    if (available) await dropSchemas(schema);
  });

  it('every client gets every event exactly once, in order, also after kill -9 of one instance', async () => {
    const env = { DATABASE_URL, LOG_SCHEMA: schema, HOLD_MS: '2000' };
    // One first, so the second does not race it creating the schema (the log serializes that too, but startup is faster this way).
    const a = await startInstance({ ...env, INSTANCE: 'a' });
    const b = await startInstance({ ...env, INSTANCE: 'b' });
    cleanup(() => a.stop());
    cleanup(() => b.stop());
    // One round-robin proxy per client, so each client's own requests strictly alternate between the instances.
    const proxies = await Promise.all(Array.from({ length: 3 }, () => startProxy({ upstreams: [a.url, b.url] })));
    for (const proxy of proxies) cleanup(() => proxy.close());

    const clients = await Promise.all(
      proxies.map(async (proxy) => {
        const client = createLongPollClient<RoomRouter>(proxy.url, { retry: { initialDelayMs: 50, maxDelayMs: 400 } });
        const lastEventId = await client.head.query({ room: 'r' });
        const rec = recorder();
        const sub = client.onRoom.subscribe({ room: 'r', lastEventId }, rec.callbacks);
        cleanup(() => sub.unsubscribe());
        return rec;
      }),
    );
    await Promise.all(clients.map((rec) => rec.untilStarted({ ms: 10_000 })));
    const requestsBefore = proxies.map((proxy) => proxy.requests());

    // Publishers on both instances at once: their events interleave in one numbering.
    const viaA = publisher(a.url);
    const viaB = publisher(b.url);
    const publishFifteen = async (via: typeof viaA, name: string) => {
      for (let i = 0; i < 15; i++) await via.publish.mutate({ room: 'r', text: `${name}${i}`, publisher: name });
    };
    await Promise.all([publishFifteen(viaA, 'pa'), publishFifteen(viaB, 'pb')]);
    for (const rec of clients) await rec.untilData(30, { ms: 15_000 });
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

    const truth = await logContents(schema, 'r');
    expect(truth).toHaveLength(60);
    for (const rec of clients) {
      await rec.untilData(truth.length, { ms: 15_000 });
      // Exactly the log, in the log's order: nothing lost, nothing twice.
      expect(rec.data()).toEqual(truth);
      expect(rec.errors().filter(isLongPollCursorError)).toEqual([]);
    }
    expect(new Set(truth.map((e) => e.data.via))).toEqual(new Set(['a', 'b']));
  }, 60_000);
});
