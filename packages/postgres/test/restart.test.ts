import { createPostgresEventLog } from '@trpc-longpoll/postgres';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { postgresAvailable, startPrivatePostgres } from '@trpc-longpoll/e2e';

/*
 * A real restart of PostgreSQL mid-stream. It runs on a private server (its
 * own data directory and port), so the restart cannot disturb the other test
 * files, which share the machine's server and run in parallel.
 */
const available = await postgresAvailable('PostgreSQL restart test');

type Topics = Record<string, number>;

describe.skipIf(!available)('PostgreSQL restarts mid-stream', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('subscribers carry on from their position: nothing lost, nothing twice, no error; the listener and the cluster channel come back', async () => {
    const server = await startPrivatePostgres();
    if (!server) {
      console.warn('\n[SKIPPED] PostgreSQL restart: initdb is not installed, so there is no private server to restart.\n');
      return;
    }
    cleanups.push(() => server.stop());
    // Re-checks only once a minute: events after the restart must come through the reconnected listener.
    const options = { pg: server.url, recheckMs: 60_000 };
    const publisher = createPostgresEventLog<Topics>(options);
    const reader = createPostgresEventLog<Topics>(options);
    cleanups.push(() => publisher.close(), () => reader.close());

    const start = await reader.head('t');
    const received: { id: string; n: number }[] = [];
    const failures: unknown[] = [];
    const controller = new AbortController();
    cleanups.push(() => controller.abort());
    const reading = (async () => {
      try {
        for await (const [id, n] of reader.subscribe('t', { lastEventId: start, signal: controller.signal })) received.push({ id, n });
      } catch (error) {
        failures.push(error);
      }
    })();

    // A publisher that retries what fails while the server is away (a retried publish may be stored twice: the log is the truth).
    let publishErrors = 0;
    const publish = async (n: number) => {
      for (;;) {
        try {
          return await publisher.publish('t', n);
        } catch {
          publishErrors++;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    };
    for (let n = 1; n <= 20; n++) await publish(n);
    await until(() => received.length === 20, 'the events before the restart');

    const restarting = server.restart();
    // A second subscriber replays from the start, five events per read, while the server goes away: its reads fail and are retried.
    const catchUp = createPostgresEventLog<Topics>({ ...options, readBatch: 5 });
    cleanups.push(() => catchUp.close());
    const replayed: { id: string; n: number }[] = [];
    const replaying = (async () => {
      try {
        for await (const [id, n] of catchUp.subscribe('t', { lastEventId: start, signal: controller.signal })) replayed.push({ id, n });
      } catch (error) {
        failures.push(error);
      }
    })();
    const during = (async () => {
      for (let n = 21; n <= 40; n++) {
        await publish(n);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    await restarting;
    await during;
    for (let n = 41; n <= 60; n++) await publish(n);

    const truth = await stored(server.url, 't');
    await until(() => received.length >= truth.length, `all ${truth.length} stored events`);
    await until(() => replayed.length >= truth.length, `all ${truth.length} stored events, replayed`);
    expect(received).toEqual(truth);
    expect(replayed).toEqual(truth);
    expect(truth.length).toBeGreaterThanOrEqual(60);
    expect(failures).toEqual([]);
    console.log(`restart mid-stream: ${truth.length} events stored, ${publishErrors} publish attempts failed while the server was away`);

    // The listening connections reconnected: the cluster channel works again.
    const heard: string[] = [];
    reader.cluster!.listen((message) => heard.push(message));
    await until(() => {
      publisher.cluster!.send('after restart');
      return heard.includes('after restart');
    }, 'a cluster message after the restart');
    controller.abort();
    await Promise.all([reading, replaying]);
  }, 60_000);
});

/** What the log holds for a topic, read straight from its tables. */
async function stored(url: string, topic: string): Promise<{ id: string; n: number }[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string; data: string }>(
      `SELECT m.epoch || ':' || e.n AS id, e.data FROM trpc_longpoll.events e, trpc_longpoll.meta m WHERE e.topic = $1 ORDER BY e.n`,
      [topic],
    );
    return rows.map((row) => ({ id: row.id, n: JSON.parse(row.data) as number }));
  } finally {
    await client.end();
  }
}

async function until(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
