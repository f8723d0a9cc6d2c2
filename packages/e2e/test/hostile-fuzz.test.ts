import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { initTRPC, tracked } from '@trpc/server';
import { parsePollResponse } from '@trpc-longpoll/protocol';
import { createLongPollHandler } from '@trpc-longpoll/server';
import fc from 'fast-check';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { containsStack, rawPoller, runCounter, startServer, useUnhandledRejections, waitFor } from '../src';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function fuzzRouter() {
  const t = initTRPC.create({ isDev: false, transformer: superjson });
  const { stats, counted: alive } = runCounter();
  const router = t.router({
    q: t.procedure.query(() => 1),
    m: t.procedure.mutation(() => 1),
    typed: t.procedure.input(z.object({ n: z.number() })).subscription(({ input }) =>
      alive(async function* () {
        yield input.n;
      }),
    ),
    counter: t.procedure.input(z.object({ lastEventId: z.string().nullish() }).optional()).subscription(({ input }) =>
      alive(async function* () {
        const from = Number(input?.lastEventId ?? 0) || 0;
        for (let i = from + 1; ; i++) yield tracked(String(i), i);
      }),
    ),
    silent: t.procedure.subscription(({ signal }) =>
      alive(async function* () {
        await new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }));
      }),
    ),
    boom: t.procedure.subscription(() =>
      alive(async function* () {
        throw new Error('internal detail');
      }),
    ),
    nested: t.router({ deep: t.procedure.subscription(async function* () {}) }),
  });
  return { router, stats };
}

const clients = ['c1', 'c2', 'c3', 'x'.repeat(64)];
const paths = ['typed', 'counter', 'silent', 'boom', 'q', 'm', 'nested', 'nested.deep', 'nope', '__proto__', 'constructor', 'toString'];
const anyNumber = fc.oneof({ weight: 8, arbitrary: fc.nat(50) }, fc.integer(), fc.double(), fc.constant(Number.MAX_SAFE_INTEGER));
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 3 });

const cursor = fc.record(
  {
    run: fc.oneof({ weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 30 }) }, fc.constant('A'.repeat(22)), fc.string(), fc.integer()),
    seq: anyNumber,
    lastEventId: maybe(fc.oneof(fc.string({ maxLength: 10 }), fc.nat().map(String))),
    restart: maybe(fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, fc.boolean(), fc.string())),
  },
  { requiredKeys: [] },
);

const input = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 3 }),
  fc.record({ json: fc.jsonValue({ maxDepth: 3 }) }),
  fc.record({ json: fc.record({ n: fc.oneof(fc.integer(), fc.string()) }) }),
  fc.record({ json: fc.jsonValue({ maxDepth: 2 }), meta: fc.jsonValue({ maxDepth: 3 }) }),
);

const subscription = fc.oneof(
  { weight: 15, arbitrary: fc.record({ key: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', ''), path: fc.oneof(fc.constantFrom(...paths), fc.string()), input, cursor: maybe(cursor) }, { requiredKeys: ['key', 'path'] }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);

/** Polls that are nearly right, so most get past the first check and reach deeper code. */
const nearValidPoll = fc.record(
  {
    v: fc.oneof({ weight: 20, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) }),
    client: fc.oneof({ weight: 20, arbitrary: fc.constantFrom(...clients) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) }),
    poll: anyNumber,
    hold: maybe(fc.oneof(fc.nat(30), anyNumber)),
    connectionParams: maybe(fc.oneof(fc.constant(null), fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 })), fc.jsonValue({ maxDepth: 1 }))),
    subscriptions: fc.oneof({ weight: 9, arbitrary: fc.uniqueArray(subscription, { maxLength: 5, selector: (sub) => (sub as { key?: unknown } | null)?.key }) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) }),
  },
  { requiredKeys: ['v', 'client', 'poll', 'subscriptions'] },
);

/** Polls that pass validation, so the fuzzer spends its time in reconciliation, runs and holds. */
const wellFormedPoll = fc.record(
  {
    v: fc.constant(1),
    client: fc.constantFrom(...clients),
    poll: fc.nat(1_000),
    hold: maybe(fc.nat(30)),
    subscriptions: fc.uniqueArray(
      fc.record(
        {
          key: fc.constantFrom('a', 'b', 'c', 'd'),
          path: fc.constantFrom(...paths),
          input,
          cursor: maybe(
            fc.record(
              { run: fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), fc.constant('A'.repeat(22))), seq: fc.nat(50), lastEventId: maybe(fc.nat(100).map(String)), restart: maybe(fc.constant(true as const)) },
              { requiredKeys: ['run', 'seq'] },
            ),
          ),
        },
        { requiredKeys: ['key', 'path'] },
      ),
      { maxLength: 5, selector: (sub) => sub.key },
    ),
  },
  { requiredKeys: ['v', 'client', 'poll', 'subscriptions'] },
);

const body = fc.oneof(
  { weight: 8, arbitrary: wellFormedPoll.map((poll) => JSON.stringify(poll)) },
  { weight: 6, arbitrary: nearValidPoll.map((poll) => JSON.stringify(poll)) },
  { weight: 2, arbitrary: fc.jsonValue().map((value) => JSON.stringify(value)) },
  { weight: 1, arbitrary: fc.string() },
  { weight: 1, arbitrary: nearValidPoll.map((poll) => JSON.stringify(poll).slice(0, -3)) },
);

const unhandled = useUnhandledRejections();

describe('hostile input: property-based', () => {
  it('every body gets a clean protocol answer, nothing is left running, and the heap stays flat', async () => {
    const fixture = fuzzRouter();
    const handler = createLongPollHandler({ router: fixture.router, holdMs: 20, idleTimeoutMs: 50, maxBufferedEvents: 20 });
    const raw = rawPoller(handler, 'http://fuzz.local/');
    const statuses = new Map<number, number>();

    const property = fc.asyncProperty(body, async (text) => {
      const answer = await raw.send(text);
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      expect([200, 400, 413, 503], answer.text).toContain(answer.status);
      expect(containsStack(answer.text), answer.text).toBe(false);
      if (answer.status === 200) {
        expect(() => parsePollResponse(answer.json)).not.toThrow();
      } else {
        const shape = superjson.deserialize<{ message: unknown; code: unknown }>(answer.json.error);
        expect(typeof shape.message).toBe('string');
        expect(typeof shape.code).toBe('number');
      }
    });

    async function settledHeap(): Promise<number> {
      // Idle expiry ends every session the round left behind.
      await waitFor(() => fixture.stats.live === 0, 5_000, 'every procedure to end');
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((resolve) => setImmediate(resolve));
      }
      return process.memoryUsage().heapUsed;
    }

    // The first round warms up the JIT, caches and pools, which grow the heap once.
    await fc.assert(property, { numRuns: 1_500, seed: 42 });
    const before = await settledHeap();
    await fc.assert(property, { numRuns: 1_500 });
    const after = await settledHeap();
    await handler.close();

    expect(unhandled).toEqual([]);
    // Several statuses were reached, so the fuzzer got past the first check.
    expect(statuses.get(200)).toBeGreaterThan(500);
    expect(statuses.get(400)).toBeGreaterThan(500);
    // Flat: 1 500 more hostile polls leave no more than allocator noise behind (measured: under 0.1 MiB).
    expect(after - before, `heap grew from ${before} to ${after}`).toBeLessThan(2 * 1024 * 1024);
  }, 60_000);

  it('the Node adapter over real HTTP gives the same clean answers and stays up', async () => {
    const fixture = fuzzRouter();
    const server = await startServer({ router: fixture.router, holdMs: 20, idleTimeoutMs: 50, maxBufferedEvents: 20 });
    const raw = rawPoller((req) => fetch(req), server.url);
    await fc.assert(
      fc.asyncProperty(body, async (text) => {
        const answer = await raw.send(text);
        expect([200, 400, 413, 503], answer.text).toContain(answer.status);
        expect(containsStack(answer.text), answer.text).toBe(false);
        if (answer.status === 200) expect(() => parsePollResponse(answer.json)).not.toThrow();
      }),
      { numRuns: 400 },
    );
    await waitFor(() => fixture.stats.live === 0, 5_000, 'every procedure to end');
    await server.close();
    expect(unhandled).toEqual([]);
  }, 60_000);
});
