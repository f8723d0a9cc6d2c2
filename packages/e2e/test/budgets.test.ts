/**
 * Attacks on a server set up as the docs show (NODE_ENV=production, default
 * options, `identify` set), each run in a process of its own so its memory
 * is measured alone. In every one, a legitimate client follows a tracked
 * feed throughout and must receive every event, once and in order; nothing
 * may answer 500; and memory must stay within the budgets (docs/reliability.md).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import superjson from 'superjson';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createLongPollClient,
  randomClientId,
  rawPoller,
  useCleanup,
  useUnhandledRejections,
  waitFor,
  type AttackRouter,
  type RawAnswer,
} from '../src';

const cleanup = useCleanup();
const unhandled = useUnhandledRejections();
afterEach(() => {
  expect(unhandled).toEqual([]);
});

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const script = fileURLToPath(new URL('../src/attack/server.ts', import.meta.url));
const MiB = 1024 * 1024;

interface Stats {
  rss: number;
  heapUsed: number;
  live: Record<string, number>;
  published: number;
}

/** Starts the target in its own process; it exits when this test's pipe to it closes. */
async function startTarget(env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', script], {
    cwd: repoRoot,
    env: { ...process.env, NODE_ENV: 'production', IDENTIFY: '1', ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  cleanup(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  const origin = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the target did not start')), 20_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{"listening"')) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { listening: string }).listening);
    });
    child.once('exit', (code) => reject(new Error(`the target exited with ${code}`)));
  });
  const stats = async (): Promise<Stats> => (await fetch(`${origin}/__stats`)).json() as Promise<Stats>;
  return { origin, url: origin, stats, exited: () => child.exitCode !== null || child.signalCode !== null };
}

/** A client of its own identity following the feed from now; `check()` asserts it has every event. */
async function legitimateClient(url: string, user = 'legit') {
  const client = createLongPollClient<AttackRouter>(url, { headers: { authorization: `Bearer ${user}` }, holdMs: 2_000 });
  const start = Number(await client.head.query());
  const received: number[] = [];
  const errors: unknown[] = [];
  const sub = client.ticks.subscribe(
    { lastEventId: String(start) },
    { onData: (event) => received.push(event.data.n), onError: (error) => errors.push(error) },
  );
  cleanup(() => sub.unsubscribe());
  return {
    received,
    /** Waits until it has caught up with the feed, then checks it has every event since it began, once, in order. */
    async check(publishedNow: number) {
      await waitFor(() => received.length >= publishedNow - start, 30_000, `the legitimate client to reach event ${publishedNow}`);
      expect(errors).toEqual([]);
      expect(received.slice(0, publishedNow - start)).toEqual(Array.from({ length: publishedNow - start }, (_, i) => start + i + 1));
    },
  };
}

/** Runs `count` tasks, `concurrency` at a time. */
async function flood<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

function statusCounts(answers: RawAnswer[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const answer of answers) counts[answer.status] = (counts[answer.status] ?? 0) + 1;
  return counts;
}

/** What a subscription's end says, per code, over a set of answers. */
function endCodes(answers: RawAnswer[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const answer of answers) {
    for (const result of Object.values((answer.json?.results ?? {}) as Record<string, { end?: { error?: unknown } }>)) {
      if (!result.end?.error) continue;
      const code = superjson.deserialize<{ data: { code: string } }>(result.end.error as never).data.code;
      counts[code] = (counts[code] ?? 0) + 1;
    }
  }
  return counts;
}

const subs = (path: string, n: number, input?: unknown) =>
  Array.from({ length: n }, (_, i) => ({ key: String(i), path, ...(input === undefined ? {} : { input }) }));

describe('budgets: no client takes more than its share', () => {
  it('one identity opening hundreds of clients of 100 subscriptions each gets 429s; its procedures stay within maxRunsPerIdentity', async () => {
    const target = await startTarget();
    const before = await target.stats();
    const legit = await legitimateClient(target.url);
    const raw = rawPoller(fetch, target.url, { headers: { authorization: 'Bearer mallory' } });
    const answers = await flood(553, 16, () => raw.poll(randomClientId(), 1, subs('silent', 100)));
    const counts = statusCounts(answers);
    expect(counts[500]).toBeUndefined();
    expect(counts[429]).toBeGreaterThan(0);
    expect(Object.keys(counts).map(Number).every((status) => status === 200 || status === 429)).toBe(true);
    expect(endCodes(answers).TOO_MANY_REQUESTS).toBeGreaterThan(0);
    const after = await target.stats();
    expect(after.live.silent).toBeLessThanOrEqual(200);
    expect(after.rss - before.rss).toBeLessThan(96 * MiB);
    await legit.check(after.published);
  });

  it('anonymous clients, each a fresh client id, are bounded by the process budgets', async () => {
    const target = await startTarget({ IDENTIFY: '0' });
    const legit = await legitimateClient(target.url);
    const raw = rawPoller(fetch, target.url);
    // 55 300 subscriptions: runs stop at maxRuns (10 000), the rest are refused as pressure.
    const answers = await flood(553, 16, () => raw.poll(randomClientId(), 1, subs('silent', 100)));
    expect(statusCounts(answers)).toEqual({ 200: 553 });
    expect(endCodes(answers).SERVICE_UNAVAILABLE).toBe(55_300 - 9_999);
    // Clients stop at maxSessions (10 000): 553 made above, then 10 000 more.
    const more = await flood(10_000, 32, () => raw.poll(randomClientId(), 1, subs('silent', 1)));
    const counts = statusCounts([...answers, ...more]);
    expect(counts[500]).toBeUndefined();
    expect(counts[503]).toBeGreaterThan(0);
    const after = await target.stats();
    expect(after.live.silent).toBe(9_999);
    expect(after.rss).toBeLessThan(512 * MiB);
    await legit.check(after.published);
  }, 60_000);

  it('with budgetKey set to the remote address, anonymous clients from one address share one budget (429)', async () => {
    const target = await startTarget({ IDENTIFY: '0', BUDGET_KEY: 'address' });
    const raw = rawPoller(fetch, target.url);
    const answers = await flood(60, 8, () => raw.poll(randomClientId(), 1, subs('silent', 10)));
    const counts = statusCounts(answers);
    // maxSessionsPerIdentity is 32 and maxRunsPerIdentity 200: the address gets 20 clients' runs, then 429s.
    expect(counts).toEqual({ 200: 32, 429: 28 });
    expect(endCodes(answers).TOO_MANY_REQUESTS).toBe(32 * 10 - 200);
    expect((await target.stats()).live.silent).toBe(200);
  });

  it('runs nobody reads stop pulling at the process byte budget, and a client that reads is not starved', async () => {
    const target = await startTarget({ IDENTIFY: '0', LONGPOLL_OPTIONS: JSON.stringify({ maxTotalBufferedBytes: 4 * MiB }) });
    const legit = await legitimateClient(target.url);
    const raw = rawPoller(fetch, target.url);
    const before = await target.stats();
    // 2 000 runs yielding every 100 ms: 3.4 MB of events a second that nobody acknowledges.
    const answers = await flood(20, 4, () => raw.poll(randomClientId(), 1, subs('fast', 100)));
    expect(statusCounts(answers)).toEqual({ 200: 20 });
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    const after = await target.stats();
    expect(after.live.fast).toBe(2_000);
    // Budget plus one event per run (each may hold one), plus the runs themselves.
    expect(after.rss - before.rss).toBeLessThan(64 * MiB);
    await legit.check(after.published);
  });

  it('an event larger than maxEventBytes ends its subscription with PAYLOAD_TOO_LARGE instead of being buffered', async () => {
    const target = await startTarget();
    const legit = await legitimateClient(target.url);
    const before = await target.stats();
    const raw = rawPoller(fetch, target.url, { headers: { authorization: 'Bearer mallory' } });
    const answers = await flood(2, 2, () => raw.poll(randomClientId(), 1, subs('big', 100)));
    expect(statusCounts(answers)).toEqual({ 200: 2 });
    const after = await target.stats();
    expect(endCodes(answers)).toEqual({ PAYLOAD_TOO_LARGE: 200 });
    expect(after.rss - before.rss).toBeLessThan(48 * MiB);
    await legit.check(after.published);
  });

  it('deep or bulky inputs are refused before deserializing, and runs keep no raw input', async () => {
    const target = await startTarget();
    const legit = await legitimateClient(target.url);
    const raw = rawPoller(fetch, target.url, { headers: { authorization: 'Bearer mallory' } });
    // 195 KB of 100 000 nested arrays: refused by depth, whatever the schema.
    // (Written out by hand: JSON.stringify itself recurses too deep for it.)
    const deep = `{"json":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const deepPoll = () =>
      `{"v":1,"client":"${randomClientId()}","poll":1,"hold":0,"subscriptions":[` +
      `{"key":"0","path":"silent","input":${deep}},{"key":"1","path":"silent","input":${deep}},{"key":"t","path":"typed","input":${deep}}]}`;
    const deepAnswers = await flood(20, 4, () => raw.send(deepPoll()));
    expect(endCodes(deepAnswers)).toEqual({ BAD_REQUEST: 60 });
    // 70 KB of small arrays: refused by size.
    const bulky = Array.from({ length: 35_000 }, () => []);
    expect(endCodes([await raw.poll(randomClientId(), 1, subs('silent', 1, { json: bulky }))])).toEqual({ PAYLOAD_TOO_LARGE: 1 });
    // 60 KB inputs within the limits start their runs, which keep nothing of them.
    const before = await target.stats();
    const wide = Array.from({ length: 15_000 }, () => [1]);
    const answers = await flood(10, 2, () => raw.poll(randomClientId(), 1, subs('silent', 15, { json: wide })));
    expect(statusCounts(answers)).toEqual({ 200: 10 });
    const after = await target.stats();
    expect(after.live.silent).toBe(150);
    // Expanded, each input would be ~1 MiB of heap; kept by 150 runs, 150 MiB.
    expect(after.heapUsed - before.heapUsed).toBeLessThan(8 * MiB);
    await legit.check(after.published);
  });

  it('a revoked client has its procedures stopped at the refusal, not at idle expiry', async () => {
    const target = await startTarget();
    const eve = createLongPollClient<AttackRouter>(target.url, { headers: { authorization: 'Bearer eve' }, holdMs: 500 });
    const errors: unknown[] = [];
    const sub = eve.silent.subscribe(undefined, { onError: (error) => errors.push(error) });
    cleanup(() => sub.unsubscribe());
    await waitUntil(async () => (await target.stats()).live.silent === 1, 5_000, 'eve to subscribe');
    await fetch(`${target.origin}/__revoke?user=eve`, { method: 'POST' });
    const revokedAt = Date.now();
    await waitUntil(async () => (await target.stats()).live.silent === 0, 5_000, "eve's procedure to stop");
    // Idle expiry is 40 s; a held poll (500 ms) plus the refusal grace (1 s) is the most it may take.
    expect(Date.now() - revokedAt).toBeLessThan(3_500);
    await waitFor(() => errors.length === 1, 5_000, 'the refusal to reach eve');
  });
});

async function waitUntil(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
