import { createRedisEventLog } from '@trpc-longpoll/redis';
import { Redis } from 'ioredis';
import superjson from 'superjson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLongPollClient, deleteKeys, recorder, REDIS_URL, redisAvailable, uniquePrefix, useCleanup, waitFor } from '../src';
import type { LambdaAppRouter, Reading } from '../src/lambda/app';
import { startLambdaGateway, type DispatcherOptions, type LambdaGateway } from '../src/lambda/dispatcher';
import { startUpstashRest, type UpstashRestFixture } from '../../upstash/test/fixture/upstashRest';

/**
 * The Lambda adapter behind a faithful stand-in for API Gateway and Lambda
 * (src/lambda/README.md): each execution environment a Node process frozen
 * with SIGSTOP between invocations, recycled at random, scaled out when all
 * are busy; every answer buffered; 504 at the integration timeout. The real
 * link subscribes through it, events come from a Redis log every
 * environment shares (or the Upstash log over REST), published by this
 * process. The default-hold check runs alongside the others: its
 * subscriptions start first and are looked at last, after 25 s of quiet.
 */
const available = await redisAvailable('Lambda harness tests');
const cleanup = useCleanup();
/** Teardown for what outlives one test: the idle subscriptions. */
const fileCleanups: (() => unknown)[] = [];
const prefix = uniquePrefix('lambda');
const admin = available ? new Redis(REDIS_URL) : undefined;
const log = available
  ? createRedisEventLog<{ [K: `room:${string}`]: Reading }>({
      redis: REDIS_URL,
      prefix,
      serializer: { serialize: superjson.stringify, deserialize: superjson.parse },
    })
  : undefined;
/** Upstash's REST API in front of the same Redis (the @trpc-longpoll/upstash tests' stand-in), for the Upstash log case. */
const upstash: UpstashRestFixture | undefined = available ? await startUpstashRest({ redis: REDIS_URL }) : undefined;
afterAll(async () => {
  for (const task of fileCleanups.splice(0).reverse()) await task();
  await upstash?.close();
  await log?.close();
  if (admin) await deleteKeys(admin, prefix);
  admin?.disconnect();
});

type Options = Omit<DispatcherOptions, 'env'> & { env?: Record<string, string>; teardown?: (task: () => unknown) => void };

async function gateway({ teardown = cleanup, ...opts }: Options): Promise<LambdaGateway> {
  const started = await startLambdaGateway({ ...opts, env: { REDIS_URL, LOG_PREFIX: prefix, ...opts.env } });
  teardown(() => started.close());
  return started;
}

/** The real client through the gateway, subscribed to `room` from the log's head. */
async function subscriber(gw: LambdaGateway, room: string, holdMs?: number, teardown = cleanup) {
  const client = createLongPollClient<LambdaAppRouter>(`${gw.url}/trpc`, { retry: { initialDelayMs: 50, maxDelayMs: 400 }, ...(holdMs ? { holdMs } : {}) });
  const lastEventId = await client.head.query({ room });
  const rec = recorder<{ id: string; data: Reading }>();
  const sub = client.onRoom.subscribe({ room, lastEventId }, rec.callbacks);
  teardown(() => sub.unsubscribe());
  await rec.untilStarted({ ms: 15_000 });
  return { client, rec, sub, numbers: () => rec.data().map((event) => event.data.n) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** Lines an environment logged about a procedure (`{"procedure":…}`), with the environment's pid. */
function lifecycle(gw: LambdaGateway, phase: 'start' | 'finally', room: string): number[] {
  return gw.logs.flatMap(({ pid, line }) => {
    try {
      const entry = JSON.parse(line) as { procedure?: string; phase?: string; room?: string };
      return entry.procedure === 'onRoom' && entry.phase === phase && entry.room === room ? [pid] : [];
    } catch {
      return [];
    }
  });
}

const payloads = [
  { name: 'REST API (payload 1.0)', payload: 'v1' },
  { name: 'HTTP API (payload 2.0)', payload: 'v2' },
] as const;

/** Each payload with the Redis log (TCP, a shared blocking reader), and the HTTP API with the Upstash log (REST, polling). */
const cases = [
  { ...payloads[0], log: 'Redis' },
  { ...payloads[1], log: 'Redis' },
  { name: 'HTTP API (payload 2.0)', payload: 'v2', log: 'Upstash' },
] as const;

function logEnv(kind: 'Redis' | 'Upstash'): Record<string, string> {
  return kind === 'Redis' ? {} : { UPSTASH_REDIS_REST_URL: upstash!.url, UPSTASH_REDIS_REST_TOKEN: upstash!.token };
}

/** A subscription through a gateway with the default hold and timeouts, which gets one event and then nothing. */
async function startIdle(payload: 'v1' | 'v2') {
  const room = `idle-${payload}`;
  const teardown = (task: () => unknown) => void fileCleanups.push(task);
  const gw = await gateway({ payload, teardown });
  const { rec, numbers } = await subscriber(gw, room, undefined, teardown);
  await publish(room, [0]);
  await rec.untilData(1, { ms: 10_000 });
  return { payload, room, gw, rec, numbers, quietSince: Date.now() };
}

describe.skipIf(!available)('AWS Lambda behind API Gateway, in a harness', () => {
  let idle: Promise<Awaited<ReturnType<typeof startIdle>>[]>;
  beforeAll(() => {
    idle = Promise.all(payloads.map(({ payload }) => startIdle(payload)));
    // Awaited by the last test; until then a failure must not count as unhandled.
    idle.catch(() => {});
  });

  it.each(cases)('$name, $log log: every event exactly once and in order across freezes, scale-out and random recycling', async ({ payload, log: kind }) => {
    const room = `exact-${payload}-${kind}`;
    const gw = await gateway({ payload, recycleChance: 0.15, seed: 12, env: { HOLD_MS: '1000', ...logEnv(kind) } });
    const { client, rec, numbers } = await subscriber(gw, room, 1_000);

    // Half straight into the log from this process, half through the gateway, which needs another environment while a poll is held.
    for (const n of range(0, 20)) {
      if (n % 2 === 0) await log!.publish(`room:${room}`, { room, n, at: new Date(n) });
      else await client.publish.mutate({ room, n });
      if (n % 5 === 4) await sleep(300);
    }
    // Whatever chance decided so far, every environment goes at once: the next poll starts cold and must resume from its cursor.
    const release = gw.pause();
    await waitFor(() => gw.environments().every((e) => e.state === 'frozen'), 10_000, 'every environment to be idle');
    await gw.recycleIdle();
    expect(gw.environments()).toEqual([]);
    release();
    for (const n of range(20, 40)) {
      await log!.publish(`room:${room}`, { room, n, at: new Date(n) });
      if (n % 5 === 4) await sleep(300);
    }
    await rec.untilData(40, { ms: 30_000 });
    await sleep(500);

    expect(numbers()).toEqual(range(0, 40));
    // superjson all the way: Dates from this process and from the function's mutations arrive as Dates.
    expect(rec.data().every((event) => event.data.at instanceof Date)).toBe(true);
    expect(rec.data()[0]!.data.at.getTime()).toBe(0);
    expect(rec.errors()).toEqual([]);
    const polls = gw.invocations.filter((i) => i.method === 'POST' && i.path === '/trpc');
    expect(polls.every((i) => i.status === 200)).toBe(true);
    // Polls were served by several environments, cold ones among them, and the procedure started in more than one.
    expect(new Set(polls.map((i) => i.pid)).size).toBeGreaterThanOrEqual(2);
    expect(polls.filter((i) => i.cold).length).toBeGreaterThanOrEqual(1);
    expect(new Set(lifecycle(gw, 'start', room)).size).toBeGreaterThanOrEqual(2);
    expect(gw.counts().recycled).toBeGreaterThanOrEqual(1);
    // Environments were frozen after answering and thawed for a later invocation.
    expect(gw.counts().thaws).toBeGreaterThanOrEqual(5);
    const coldStartMs = gw.coldStarts().sort((a, b) => a - b)[Math.floor(gw.coldStarts().length / 2)];
    console.log(`[lambda ${payload} ${kind}] ${JSON.stringify({ ...gw.counts(), invocations: gw.invocations.length, polls: polls.length, coldStartMs })}`);
  }, 60_000);

  it('a frozen blocking reader recovers after thaw; a farewell that reaches the environment running the procedure stops it', async () => {
    const room = 'frozen-reader';
    // Connections named so CLIENT LIST can find this gateway's; no recycling and no concurrent calls: one environment.
    const name = `tlp-lambda-${Math.random().toString(36).slice(2, 10)}`;
    const redisUrl = new URL(REDIS_URL);
    redisUrl.searchParams.set('connectionName', name);
    // Blocks of 300 ms, but no re-read for 60 s and no idle expiry for 30 s: only the shared reader can wake the run.
    const env = { REDIS_URL: redisUrl.href, HOLD_MS: '1000', BLOCK_MS: '300', RECHECK_MS: '60000', IDLE_TIMEOUT_MS: '30000' };
    const gw = await gateway({ payload: 'v2', env });
    const { rec, sub, numbers } = await subscriber(gw, room, 1_000);
    await publish(room, range(0, 3));
    await rec.untilData(3, { ms: 10_000 });

    // The client drops off the network: no invocation arrives, so the environment stays frozen.
    const release = gw.pause();
    await waitFor(() => gw.environments().every((e) => e.state === 'frozen'), 5_000, 'the environment to freeze');
    await sleep(1_000);
    // The reader's XREAD BLOCK ran out while its process was stopped: Redis no longer counts it as blocked.
    expect(await readerFlags(name)).not.toContain('b');
    await publish(room, range(3, 6));
    await sleep(500);
    expect(gw.environments().map((e) => e.state)).toEqual(['frozen']);
    expect(numbers()).toEqual(range(0, 3));

    release();
    await rec.untilData(6, { ms: 10_000 });
    await publish(room, range(6, 9));
    await rec.untilData(9, { ms: 10_000 });
    expect(numbers()).toEqual(range(0, 9));
    // One environment, one run all along: the events reached the run the freeze had found waiting, through the reader.
    const [only] = gw.environments();
    expect(gw.counts()).toMatchObject({ started: 1, recycled: 0 });
    expect(lifecycle(gw, 'start', room)).toEqual([only!.pid]);
    expect(rec.errors()).toEqual([]);

    // The unsubscribe aborts the held poll, but its invocation runs on to the hold's end (nobody tells a Lambda the
    // client left); the farewell reaches the gateway meanwhile and is held there until that environment is free.
    const resume = gw.pause();
    sub.unsubscribe();
    await waitFor(() => gw.environments().every((e) => e.state === 'frozen'), 5_000, 'the aborted poll to end');
    resume();
    await waitFor(() => lifecycle(gw, 'finally', room).length > 0, 5_000, 'the farewell to stop the procedure');
    expect(lifecycle(gw, 'finally', room)).toEqual([only!.pid]);
    expect(gw.counts().started).toBe(1);
  }, 60_000);

  it('a procedure runs only while its environment runs: a farewell that lands elsewhere leaves it to idle expiry at its next thaw', async () => {
    const room = 'orphan';
    const gw = await gateway({ payload: 'v1', env: { HOLD_MS: '1000', IDLE_TIMEOUT_MS: '2000' } });
    const { client, rec, sub } = await subscriber(gw, room, 1_000);
    await publish(room, [0]);
    await rec.untilData(1, { ms: 10_000 });
    const [first] = gw.environments();
    expect(lifecycle(gw, 'start', room)).toEqual([first!.pid]);

    // What usually happens: the unsubscribe aborts the held poll, whose invocation keeps its environment busy to the
    // hold's end, so the farewell goes to another environment (forced here, so it does not depend on timing).
    gw.place(() => null);
    sub.unsubscribe();
    await waitFor(() => gw.environments().length === 2 && gw.environments().every((e) => e.state === 'frozen'), 10_000, 'the farewell to be answered');
    await sleep(2_500);
    // Past the idle expiry, yet the procedure has not ended: its environment has been frozen all along.
    expect(lifecycle(gw, 'finally', room)).toEqual([]);

    // The next invocation that thaws its environment, whatever it is for, lets the expiry run.
    gw.place((idle) => idle.find((e) => e.id === first!.id) ?? null);
    for (let attempt = 0; attempt < 10 && lifecycle(gw, 'finally', room).length === 0; attempt++) {
      expect(await client.environment.query()).toBe(first!.pid);
      await sleep(100);
    }
    expect(lifecycle(gw, 'finally', room)).toEqual([first!.pid]);
  }, 40_000);

  it('cuts an invocation at the integration timeout with 504; the link retries, the busy environment makes the gateway scale out', async () => {
    // A hold longer than the cut: every held poll is cut, which is what the default hold is chosen to avoid.
    const gw = await gateway({ payload: 'v1', integrationTimeoutMs: 2_500, env: { HOLD_MS: '6000' } });
    const client = createLongPollClient<LambdaAppRouter>(`${gw.url}/trpc`, { holdMs: 6_000, retry: { initialDelayMs: 50, maxDelayMs: 400 } });
    const rec = recorder();
    const sub = client.onRoom.subscribe({ room: 'cut' }, rec.callbacks);
    cleanup(() => sub.unsubscribe());
    await rec.untilInterrupted({ ms: 20_000 });
    expect(rec.interruptions()[0]!.error).toMatch(/504/);
    // A warm environment's held poll ran on past the cut to its hold; the client had its 504 at the cut.
    await waitFor(() => gw.invocations.some((i) => i.status === 504 && !i.cold), 20_000, 'a held poll cut');
    expect(gw.invocations.find((i) => i.status === 504 && !i.cold)!.ms).toBeGreaterThanOrEqual(5_000);
    expect(gw.counts().started).toBeGreaterThanOrEqual(2);
    expect(rec.errors()).toEqual([]);
  }, 40_000);

  it('a poll held for the default 20 s completes before the 29 s integration timeout: 25 s of quiet, no error, no reconnect', async () => {
    const subscriptions = await idle;
    const quietFor = Date.now() - Math.max(...subscriptions.map((s) => s.quietSince));
    if (quietFor < 25_500) await sleep(25_500 - quietFor);
    for (const { payload, room, gw, rec, numbers } of subscriptions) {
      await publish(room, [1]);
      await rec.untilData(2, { ms: 10_000 });
      expect(numbers()).toEqual([0, 1]);
      expect(rec.failures()).toEqual([]);
      const polls = gw.invocations.filter((i) => i.path === '/trpc');
      expect(polls.every((i) => i.status === 200)).toBe(true);
      // A poll was held to its expiry (20 s + jitter) and answered well before the gateway's cut.
      const held = polls.filter((i) => i.ms >= 19_000);
      expect(held.length).toBeGreaterThanOrEqual(1);
      expect(held.every((i) => i.ms < 29_000)).toBe(true);
      console.log(`[lambda ${payload}] polls held to expiry (ms): ${held.map((i) => i.ms).join(', ')}`);
    }
  }, 60_000);
});

async function publish(room: string, numbers: number[]): Promise<void> {
  for (const n of numbers) await log!.publish(`room:${room}`, { room, n, at: new Date(n) });
}

/** The flags of the named connection whose last command was XREAD: `b` while Redis holds it blocked. */
async function readerFlags(name: string): Promise<string> {
  const list = String(await admin!.client('LIST'));
  const line = list.split('\n').find((l) => l.includes(` name=${name} `) && l.includes(' cmd=xread'));
  if (!line) throw new Error(`no XREAD connection named ${name} in CLIENT LIST`);
  return /\bflags=(\S+)/.exec(line)![1]!;
}
