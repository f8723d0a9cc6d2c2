import { initTRPC, tracked } from '@trpc/server';
import { createLongPollHandler } from '@trpc-longpoll/server';
import superjson from 'superjson';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  containsStack,
  createLongPollClient,
  randomClientId,
  rawPoller,
  recorder,
  startServer,
  useCleanup,
  useUnhandledRejections,
  waitFor,
} from '../src';

const cleanup = useCleanup();
const URL_ = 'http://test.local/trpc';

/** A production-mode router (`isDev: false`): no answer may carry a stack. */
function hostileRouter() {
  const t = initTRPC.context<{ user: string | null }>().create({ isDev: false, transformer: superjson });
  const stats = { pulled: 0, live: 0 };
  const router = t.router({
    q: t.procedure.query(() => 1),
    m: t.procedure.mutation(() => 1),
    typed: t.procedure.input(z.object({ n: z.number() })).subscription(async function* ({ input }) {
      yield input.n;
    }),
    /** Yields as fast as it is pulled, to show backpressure. */
    counter: t.procedure.subscription(async function* () {
      stats.live++;
      try {
        for (let i = 1; ; i++) {
          stats.pulled = i;
          yield tracked(String(i), i);
        }
      } finally {
        stats.live--;
      }
    }),
    /** Never yields: its polls are held. */
    silent: t.procedure.subscription(async function* ({ signal }) {
      stats.live++;
      try {
        await new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }));
        yield 0;
      } finally {
        stats.live--;
      }
    }),
    boom: t.procedure.subscription(async function* () {
      throw new Error('db at /srv/app/db.ts:12 refused');
      yield 0;
    }),
  });
  return { router, stats };
}

function handlerFor(opts: Partial<Parameters<typeof createLongPollHandler>[0]> = {}) {
  const fixture = hostileRouter();
  const handler = createLongPollHandler({
    router: fixture.router,
    endpoint: '/trpc',
    createContext: () => ({ user: 'ann' }),
    holdMs: 2_000,
    ...opts,
  } as Parameters<typeof createLongPollHandler<typeof fixture.router>>[0]);
  cleanup(() => handler.close());
  return { ...fixture, handler, raw: rawPoller(handler, URL_) };
}

/** Every refusal is a protocol error body: `{ v: 1, error: { message, code, data } }` and nothing from inside. */
function expectCleanError(answer: { status: number; json: any; text: string }, status: number, code: string, message?: RegExp) {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.json).toMatchObject({ v: 1, error: expect.anything() });
  // Error shapes travel through the router's transformer, as tRPC's do.
  const shape = superjson.deserialize<{ message: string }>(answer.json.error);
  expect(shape).toMatchObject({ message: expect.any(String), code: expect.any(Number), data: { code } });
  if (message) expect(shape.message).toMatch(message);
  expect(containsStack(answer.text), answer.text).toBe(false);
}

const unhandled = useUnhandledRejections();
afterEach(() => {
  expect(unhandled).toEqual([]);
});

const client = randomClientId();
const valid = { v: 1, client, poll: 1, hold: 0, subscriptions: [{ key: 'a', path: 'typed', input: { json: { n: 1 } } }] };
const sub0 = valid.subscriptions[0]!;

describe('hostile input: refused with a clear error', () => {
  const cases: [string, unknown, number, string, RegExp][] = [
    ['not JSON', '{"v":1,', 400, 'PARSE_ERROR', /not valid JSON/],
    ['empty body', '', 400, 'PARSE_ERROR', /not valid JSON/],
    ['a JSON array', [valid], 400, 'BAD_REQUEST', /JSON object/],
    ['a JSON string', 'x', 400, 'PARSE_ERROR', /JSON/],
    ['null', null, 400, 'BAD_REQUEST', /JSON object/],
    ['an unknown version', { ...valid, v: 2 }, 400, 'BAD_REQUEST', /version 2.*v1/],
    ['the version as a string', { ...valid, v: '1' }, 400, 'BAD_REQUEST', /version "1"/],
    ['no version', { ...valid, v: undefined }, 400, 'BAD_REQUEST', /version/],
    ['a numeric client id', { ...valid, client: 7 }, 400, 'BAD_REQUEST', /client/],
    ['an overlong client id', { ...valid, client: 'x'.repeat(65) }, 400, 'BAD_REQUEST', /client/],
    ['a negative poll number', { ...valid, poll: -1 }, 400, 'BAD_REQUEST', /poll/],
    ['a fractional poll number', { ...valid, poll: 1.5 }, 400, 'BAD_REQUEST', /poll/],
    ['an unsafe poll number', { ...valid, poll: 2 ** 60 }, 400, 'BAD_REQUEST', /poll/],
    ['a negative hold', { ...valid, hold: -5 }, 400, 'BAD_REQUEST', /hold/],
    ['subscriptions as an object', { ...valid, subscriptions: { a: sub0 } }, 400, 'BAD_REQUEST', /subscriptions must be an array/],
    ['a subscription that is a string', { ...valid, subscriptions: ['typed'] }, 400, 'BAD_REQUEST', /subscriptions\[0\]/],
    ['an empty key', { ...valid, subscriptions: [{ ...sub0, key: '' }] }, 400, 'BAD_REQUEST', /subscriptions\[0\]\.key/],
    ['a repeated key', { ...valid, subscriptions: [sub0, sub0] }, 400, 'BAD_REQUEST', /repeated/],
    ['a numeric path', { ...valid, subscriptions: [{ ...sub0, path: 3 }] }, 400, 'BAD_REQUEST', /\.path/],
    ['an overlong path', { ...valid, subscriptions: [{ ...sub0, path: 'a.'.repeat(300) }] }, 400, 'BAD_REQUEST', /\.path/],
    ['a cursor that is a string', { ...valid, subscriptions: [{ ...sub0, cursor: 'abc' }] }, 400, 'BAD_REQUEST', /cursor must be an object/],
    ['a cursor seq as a string', { ...valid, subscriptions: [{ ...sub0, cursor: { run: 'r', seq: '3' } }] }, 400, 'BAD_REQUEST', /cursor\.seq/],
    ['a cursor without run', { ...valid, subscriptions: [{ ...sub0, cursor: { seq: 3 } }] }, 400, 'BAD_REQUEST', /cursor\.run/],
    ['restart: false', { ...valid, subscriptions: [{ ...sub0, cursor: { run: 'r', seq: 0, restart: false } }] }, 400, 'BAD_REQUEST', /restart/],
    ['an overlong lastEventId', { ...valid, subscriptions: [{ ...sub0, cursor: { run: 'r', seq: 0, lastEventId: 'x'.repeat(2000) } }] }, 400, 'BAD_REQUEST', /lastEventId/],
    ['connectionParams with a number', { ...valid, connectionParams: { token: 1 } }, 400, 'BAD_REQUEST', /connectionParams\.token/],
    ['connectionParams as an array', { ...valid, connectionParams: ['a'] }, 400, 'BAD_REQUEST', /connectionParams/],
  ];

  it.each(cases)('%s', async (_name, body, status, code, message) => {
    const { raw, stats } = handlerFor();
    expectCleanError(await raw.send(typeof body === 'string' ? body : JSON.stringify(body)), status, code, message);
    expect(stats.live).toBe(0);
  });

  it('a body over maxBodyBytes is 413, whether its length is declared or streamed', async () => {
    const { handler, raw } = handlerFor({ maxBodyBytes: 2_000 });
    const big = JSON.stringify({ ...valid, subscriptions: [{ ...sub0, input: { json: { n: 1, pad: 'x'.repeat(3_000) } } }] });
    expectCleanError(await raw.send(big), 413, 'PAYLOAD_TOO_LARGE', /larger than 2000 bytes/);
    // No content-length: the limit is enforced while reading.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 10; i++) controller.enqueue(new TextEncoder().encode(' '.repeat(500)));
        controller.close();
      },
    });
    const res = await handler(
      new Request(URL_, { method: 'POST', headers: { 'content-type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit),
    );
    expect(res.status).toBe(413);
    // Just under the limit is fine.
    const fits = JSON.stringify({ ...valid, subscriptions: [{ ...sub0, input: { json: { n: 1, pad: 'x'.repeat(1_500) } } }] });
    expect((await raw.send(fits)).status).toBe(200);
  });

  it('thousands of subscriptions in one poll are refused with 413 naming the cap, before any procedure starts', async () => {
    const { raw, stats } = handlerFor();
    const subscriptions = Array.from({ length: 5_000 }, (_, i) => ({ key: String(i), path: 'silent' }));
    expectCleanError(await raw.poll(client, 1, subscriptions), 413, 'PAYLOAD_TOO_LARGE', /at most 100 subscriptions; this one has 5000/);
    expect(stats.live).toBe(0);
  });

  it('maxSubscriptionsPerPoll is configurable', async () => {
    const { raw } = handlerFor({ maxSubscriptionsPerPoll: 3 });
    const subs = (n: number) => Array.from({ length: n }, (_, i) => ({ key: String(i), path: 'typed', input: { json: { n: i } } }));
    expect((await raw.poll(client, 1, subs(3))).status).toBe(200);
    expectCleanError(await raw.poll(client, 2, subs(4)), 413, 'PAYLOAD_TOO_LARGE', /at most 3/);
  });

  it('a GET is 405 with Allow: POST', async () => {
    const { handler } = handlerFor();
    const res = await handler(new Request(URL_));
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });
});

describe('hostile input: per-subscription errors leave the rest of the poll alone', () => {
  it('unknown procedures, prototype names, queries, mutations, bad inputs and broken superjson each end only their subscription', async () => {
    const { raw } = handlerFor();
    const answer = await raw.poll(client, 1, [
      { key: 'unknown', path: 'nope.nothing' },
      { key: 'proto', path: '__proto__' },
      { key: 'ctor', path: 'constructor' },
      { key: 'query', path: 'q' },
      { key: 'mutation', path: 'm' },
      { key: 'badInput', path: 'typed', input: { json: { n: 'one' } } },
      { key: 'badSuperjson', path: 'typed', input: { json: { n: 1 }, meta: { values: { n: ['custom', 'nope'] } } } },
      { key: 'notSuperjson', path: 'typed', input: 42 },
      { key: 'ok', path: 'typed', input: { json: { n: 5 } } },
    ]);
    expect(answer.status).toBe(200);
    expect(containsStack(answer.text), answer.text).toBe(false);
    const results = answer.json.results;
    const codeOf = (key: string) => superjson.deserialize<{ data: { code: string } }>(results[key].end.error).data.code;
    expect(codeOf('unknown')).toBe('NOT_FOUND');
    expect(codeOf('proto')).toBe('NOT_FOUND');
    expect(codeOf('ctor')).toBe('NOT_FOUND');
    expect(codeOf('query')).toBe('METHOD_NOT_SUPPORTED');
    expect(codeOf('mutation')).toBe('METHOD_NOT_SUPPORTED');
    expect(codeOf('badInput')).toBe('BAD_REQUEST');
    expect(codeOf('badSuperjson')).toBe('BAD_REQUEST');
    expect(codeOf('notSuperjson')).toBe('BAD_REQUEST');
    expect(superjson.deserialize<{ message: string }>(results.query.end.error).message).toBe('"q" is a query; only subscriptions can be long-polled');
    expect(results.ok.events.map((e: { data: unknown }) => superjson.deserialize(e.data as never))).toEqual([5]);
  });

  it('a procedure throwing a plain error answers INTERNAL_SERVER_ERROR without a stack', async () => {
    const { raw } = handlerFor();
    const answer = await raw.poll(client, 1, [{ key: 'b', path: 'boom' }]);
    expect(answer.status).toBe(200);
    expect(containsStack(answer.text), answer.text).toBe(false);
    expect(superjson.deserialize<{ data: { code: string } }>(answer.json.results.b.end.error).data.code).toBe('INTERNAL_SERVER_ERROR');
  });

  it('forged cursors: an unknown run of an untracked stream is resume-lost; of a tracked one, a fresh run from its lastEventId', async () => {
    const { raw, stats } = handlerFor();
    const forged = 'A'.repeat(22);
    const lost = await raw.poll(client, 1, [{ key: 't', path: 'typed', input: { json: { n: 1 } }, cursor: { run: forged, seq: 9 } }]);
    expect(lost.json.results.t.end).toMatchObject({ type: 'error', reason: 'resume-lost' });
    expect(superjson.deserialize<{ data: { code: string } }>(lost.json.results.t.end.error).data.code).toBe('CONFLICT');

    const resumed = await raw.poll(client, 2, [{ key: 'c', path: 'counter', cursor: { run: forged, seq: 9, lastEventId: 'not-a-number' } }], {}, {});
    expect(resumed.status).toBe(200);
    expect(resumed.json.results.c.run).not.toBe(forged);
    expect(stats.live).toBe(1);
  });

  it('a stale or replayed poll number changes nothing', async () => {
    const { raw } = handlerFor();
    const first = await raw.poll(client, 5, [{ key: 'c', path: 'counter' }]);
    const run = first.json.results.c.run as string;
    const stale = await raw.poll(client, 5, []);
    expect(stale.json).toEqual({ v: 1, results: {}, stale: true });
    // The farewell above was stale, so the run is still there.
    const next = await raw.poll(client, 6, [{ key: 'c', path: 'counter', cursor: { run, seq: 1 } }]);
    expect(next.json.results.c.run).toBe(run);
  });
});

describe('limits', () => {
  it('maxHeldPolls: polls beyond it get 503 with a Retry-After of 1–4 s; held ones are unaffected', async () => {
    const { raw } = handlerFor({ maxHeldPolls: 2 });
    const controller = new AbortController();
    cleanup(() => controller.abort());
    /** A client's first poll is answered at once (it announces the run); its second is held. */
    async function holdOne() {
      const id = randomClientId();
      const first = await raw.poll(id, 1, [{ key: 's', path: 'silent' }]);
      const cursor = { run: first.json.results.s.run as string, seq: 0 };
      return raw.poll(id, 2, [{ key: 's', path: 'silent', cursor }], { hold: 10_000 }, { signal: controller.signal });
    }
    const held = [holdOne(), holdOne()];
    // Keep knocking until both holds are in place.
    const deadline = Date.now() + 5_000;
    let refused: Awaited<ReturnType<typeof raw.poll>> | undefined;
    while (!refused) {
      if (Date.now() > deadline) throw new Error('no poll was refused');
      const answer = await raw.poll(randomClientId(), 1, [{ key: 't', path: 'typed', input: { json: { n: 1 } } }]);
      if (answer.status !== 200) refused = answer;
      else await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expectCleanError(refused!, 503, 'SERVICE_UNAVAILABLE', /Too many polls/);
    const seconds = Number(refused!.headers.get('retry-after'));
    expect(seconds).toBeGreaterThanOrEqual(1);
    expect(seconds).toBeLessThanOrEqual(4);
    controller.abort();
    expect((await Promise.all(held)).map((a) => a.status)).toEqual([200, 200]);
    expect((await raw.poll(randomClientId(), 1, [{ key: 't', path: 'typed', input: { json: { n: 1 } } }])).status).toBe(200);
  });

  it('maxBufferedEvents: the procedure is not pulled past the cap until the client acknowledges', async () => {
    const { raw, stats } = handlerFor({ maxBufferedEvents: 5, maxBatchEvents: 100 });
    const first = await raw.poll(client, 1, [{ key: 'c', path: 'counter' }]);
    const run = first.json.results.c.run as string;
    await waitFor(() => stats.pulled >= 5);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // The generator sits suspended at its sixth yield.
    expect(stats.pulled).toBeLessThanOrEqual(6);
    const again = await raw.poll(client, 2, [{ key: 'c', path: 'counter', cursor: { run, seq: 0 } }]);
    expect(again.json.results.c.events).toHaveLength(5);
    await raw.poll(client, 3, [{ key: 'c', path: 'counter', cursor: { run, seq: 5 } }]);
    await waitFor(() => stats.pulled >= 10);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stats.pulled).toBeLessThanOrEqual(11);
  });

  it('maxBatchEvents and maxBatchBytes cut an answer short with more: true; one event always goes', async () => {
    const { raw, stats } = handlerFor({ maxBufferedEvents: 50, maxBatchEvents: 7 });
    const first = await raw.poll(client, 1, [{ key: 'c', path: 'counter' }]);
    const run = first.json.results.c.run as string;
    await waitFor(() => stats.pulled >= 50);
    const byCount = await raw.poll(client, 2, [{ key: 'c', path: 'counter', cursor: { run, seq: 0 } }]);
    expect(byCount.json.results.c.events).toHaveLength(7);
    expect(byCount.json.more).toBe(true);

    const tiny = handlerFor({ maxBufferedEvents: 50, maxBatchBytes: 1 });
    const announced = await tiny.raw.poll(client, 1, [{ key: 'c', path: 'counter' }]);
    await waitFor(() => tiny.stats.pulled >= 50);
    const byBytes = await tiny.raw.poll(client, 2, [{ key: 'c', path: 'counter', cursor: { run: announced.json.results.c.run, seq: 0 } }]);
    expect(byBytes.json.results.c.events.map((e: { seq: number }) => e.seq)).toEqual([1]);
    expect(byBytes.json.more).toBe(true);
  });

  it('idleTimeoutMs: a client that stops polling loses its runs, and their procedures end', async () => {
    const { raw, stats } = handlerFor({ idleTimeoutMs: 100 });
    await raw.poll(client, 1, [{ key: 's', path: 'silent' }, { key: 'c', path: 'counter' }]);
    expect(stats.live).toBe(2);
    await waitFor(() => stats.live === 0, 5_000, 'idle expiry');
  });

  it('maxHeldPolls, seen from the client: the refused client shows connecting, waits out Retry-After, then gets through', async () => {
    const fixture = hostileRouter();
    const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }), maxHeldPolls: 1, holdMs: 5_000 });
    cleanup(() => server.close());
    const first = createLongPollClient<typeof fixture.router>(server.url, { holdMs: 5_000 });
    const holder = recorder();
    const held = first.silent.subscribe(undefined, holder.callbacks);
    await holder.untilStarted();
    await waitFor(() => server.inFlight() === 1, 5_000, 'the first client to be held');

    const sent: { at: number; status?: number }[] = [];
    const second = createLongPollClient<typeof fixture.router>(server.url, {
      holdMs: 5_000,
      retry: { initialDelayMs: 10, maxDelayMs: 20 },
      fetch: async (url, init) => {
        const entry: { at: number; status?: number } = { at: Date.now() };
        sent.push(entry);
        const res = await fetch(url, init);
        entry.status = res.status;
        return res;
      },
    });
    const refused = recorder();
    const sub = second.typed.subscribe({ n: 7 }, refused.callbacks);
    cleanup(() => sub.unsubscribe());
    await refused.untilInterrupted();
    // Room again: the first client leaves.
    held.unsubscribe();
    await refused.untilData(1, { ms: 10_000 });
    expect(refused.data()).toEqual([7]);
    const firstRefusal = sent.findIndex((s) => s.status === 503);
    // Its backoff alone is at most 20 ms; the retry waited for Retry-After (at least 1 s).
    expect(sent[firstRefusal + 1]!.at - sent[firstRefusal]!.at).toBeGreaterThanOrEqual(950);
  });

  it('the Node adapter refuses an oversized body with 413 and goes on serving', async () => {
    const fixture = hostileRouter();
    const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }), maxBodyBytes: 1_000 });
    cleanup(() => server.close());
    const raw = rawPoller((req) => fetch(req), server.url);
    const big = JSON.stringify({ ...valid, subscriptions: [{ ...sub0, input: { json: { n: 1, pad: 'x'.repeat(5_000) } } }] });
    expectCleanError(await raw.send(big), 413, 'PAYLOAD_TOO_LARGE', /larger than 1000 bytes/);
    expect((await raw.send(JSON.stringify(valid))).status).toBe(200);
  });

  it('bad option values are refused when the handler is created', () => {
    const { router } = hostileRouter();
    for (const bad of [{ maxHeldPolls: -1 }, { maxBodyBytes: Number.NaN }, { idleTimeoutMs: Infinity }]) {
      expect(() => createLongPollHandler({ router, createContext: () => ({ user: null }), ...bad })).toThrow(/must be a non-negative number/);
    }
  });
});
