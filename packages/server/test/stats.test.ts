import { EventEmitter, on } from 'node:events';
import { initTRPC, tracked, TRPCError } from '@trpc/server';
import type { PollRequest, PollResponse } from '@trpc-longpoll/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { createLongPollCore, type LongPollCore, type LongPollCounters, type LongPollOptions } from '../src';
import { EventLogGoneError } from '../src/log/errors';

type CoreOptions = Omit<LongPollOptions<any, any>, 'router'> & { createContext?: () => unknown };

/** The core without HTTP, as in core.test.ts, with a router whose events the test emits by hand. */
function setUp(opts: CoreOptions = {}) {
  const t = initTRPC.context<{ user?: string }>().create();
  const emitter = new EventEmitter();
  const router = t.router({
    numbers: t.procedure.subscription(async function* ({ signal }) {
      for await (const [value] of on(emitter, 'n', { signal })) yield value as number;
    }),
    tracked: t.procedure.subscription(async function* ({ signal }) {
      for await (const [id] of on(emitter, 't', { signal })) yield tracked(id as string, id as string);
    }),
    gone: t.procedure.subscription(async function* () {
      yield* [];
      throw new EventLogGoneError({ topic: 'posts', cursor: '7' });
    }),
  });
  const { createContext = () => ({}), ...rest } = opts;
  const core = createLongPollCore({ router, holdMs: 200, ...rest });
  cores.push(core);
  let pollNumber = 0;
  const serve = (body: string, contentType = 'application/json') =>
    core.serve({
      method: 'POST',
      url: '/',
      header: (name) => (name === 'content-type' ? contentType : undefined),
      body: { text: body },
      signal: new AbortController().signal,
      req: null,
      createContext,
    });
  const poll = async (subscriptions: PollRequest['subscriptions'], client = 'c1', number = ++pollNumber) => {
    const answer = await serve(JSON.stringify({ v: 1, client, poll: number, subscriptions } satisfies PollRequest));
    return { status: answer.status, json: JSON.parse(answer.body) as PollResponse };
  };
  return { core, poll, serve, emitter };
}

const cores: LongPollCore[] = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((core) => core.close()));
});

const tick = (ms = 20) => new Promise((resolve) => setTimeout(resolve, ms));

/** Counters as they are at start, with `changes` applied: every test states every counter it moved. */
function counters(changes: {
  polls?: Partial<LongPollCounters['polls']>;
  refusals?: LongPollCounters['refusals'];
  runs?: Partial<LongPollCounters['runs']>;
  cursorErrors?: Partial<LongPollCounters['cursorErrors']>;
  eventsDelivered?: number;
  moves?: Partial<LongPollCounters['moves']>;
}): LongPollCounters {
  return {
    polls: { news: 0, holdExpired: 0, released: 0, drain: 0, stale: 0, ...changes.polls },
    refusals: changes.refusals ?? {},
    runs: { started: 0, resumed: 0, adopted: 0, ...changes.runs },
    cursorErrors: { 'resume-lost': 0, gone: 0, reset: 0, 'no-affinity': 0, ...changes.cursorErrors },
    eventsDelivered: changes.eventsDelivered ?? 0,
    moves: { announced: 0, dropped: 0, ...changes.moves },
  };
}

describe('stats', () => {
  it('starts empty, with every budget and its limit', () => {
    const { core } = setUp({ maxSessions: 7, maxRuns: 8, maxHeldPolls: 9, maxTotalBufferedBytes: 10_000 });
    expect(core.stats()).toEqual({
      heldPolls: 0,
      pollsInProgress: 0,
      sessions: 0,
      runs: { total: 0, byPath: {} },
      bufferedEvents: 0,
      bufferedBytes: 0,
      budgets: {
        sessions: { used: 0, limit: 7 },
        runs: { used: 0, limit: 8 },
        heldPolls: { used: 0, limit: 9 },
        totalBufferedBytes: { used: 0, limit: 10_000 },
      },
      counters: counters({}),
    });
  });

  it('counts a subscribe (news), the events delivered, an unsubscribe and a hold that expires', async () => {
    const { core, poll, emitter } = setUp({ holdMs: 100 });
    const first = await poll([
      { key: 'a', path: 'numbers' },
      { key: 'b', path: 'numbers' },
    ]);
    const runA = first.json.results.a!.run!;
    const runB = first.json.results.b!.run!;
    expect(core.stats()).toMatchObject({ sessions: 1, runs: { total: 2, byPath: { numbers: 2 } }, bufferedEvents: 0 });
    expect(core.stats().counters).toEqual(counters({ polls: { news: 1 }, runs: { started: 2 } }));

    for (let i = 1; i <= 3; i++) emitter.emit('n', i);
    await tick();
    const buffered = core.stats();
    expect(buffered.bufferedEvents).toBe(6);
    expect(buffered.bufferedBytes).toBeGreaterThan(0);
    expect(buffered.budgets.totalBufferedBytes.used).toBe(buffered.bufferedBytes);

    const second = await poll([
      { key: 'a', path: 'numbers', cursor: { run: runA, seq: 0 } },
      { key: 'b', path: 'numbers', cursor: { run: runB, seq: 0 } },
    ]);
    expect(second.json.results.a!.events).toHaveLength(3);
    expect(core.stats().counters).toEqual(counters({ polls: { news: 2 }, runs: { started: 2 }, eventsDelivered: 6 }));

    // Unsubscribing `a` (left out of the poll) stops its run; `b` has nothing new, so the poll is held until it expires.
    const third = await poll([{ key: 'b', path: 'numbers', cursor: { run: runB, seq: 3 } }]);
    expect(third.json).toEqual({ v: 1, results: {} });
    const after = core.stats();
    expect(after).toMatchObject({ sessions: 1, runs: { total: 1, byPath: { numbers: 1 } }, bufferedEvents: 0, bufferedBytes: 0 });
    expect(after.budgets.runs.used).toBe(1);
    expect(after.counters).toEqual(counters({ polls: { news: 2, holdExpired: 1 }, runs: { started: 2 }, eventsDelivered: 6 }));
  });

  it('counts a held poll released by a newer one, a stale poll and a drain', async () => {
    const { core, poll } = setUp({ holdMs: 5_000 });
    const run = (await poll([{ key: 'a', path: 'numbers' }])).json.results.a!.run!;
    const sub = { key: 'a', path: 'numbers', cursor: { run, seq: 0 } };
    const held = poll([sub], 'c1', 10);
    await tick(50);
    expect(core.stats()).toMatchObject({ heldPolls: 1, pollsInProgress: 1, budgets: { heldPolls: { used: 1 } } });
    const newer = poll([sub], 'c1', 11);
    expect((await held).json).toEqual({ v: 1, results: {} });
    expect((await poll([sub], 'c1', 5)).json).toEqual({ v: 1, results: {}, stale: true });
    await tick(50);
    expect(core.stats().heldPolls).toBe(1);
    expect(core.stats().counters).toEqual(counters({ polls: { news: 1, released: 1, stale: 1 }, runs: { started: 1 } }));

    await core.close();
    expect((await newer).status).toBe(200);
    const closed = core.stats();
    expect(closed).toMatchObject({ heldPolls: 0, pollsInProgress: 0, sessions: 0, runs: { total: 0, byPath: {} } });
    expect(closed.counters).toEqual(counters({ polls: { news: 1, released: 1, stale: 1, drain: 1 }, runs: { started: 1 } }));
    // A poll after close() is refused.
    expect((await poll([sub], 'c1', 12)).status).toBe(503);
    expect(core.stats().counters.refusals).toEqual({ closed: { status: 503, count: 1 } });
  });

  it('counts a refused flood by reason and status', async () => {
    const { core, poll, serve } = setUp({ identify: () => 'ann', maxSessionsPerIdentity: 2, maxRunsPerIdentity: 3 });
    const statuses: number[] = [];
    for (let i = 1; i <= 5; i++) {
      statuses.push((await poll([{ key: 'a', path: 'numbers' }, { key: 'b', path: 'numbers' }], `c${i}`)).status);
    }
    expect(statuses).toEqual([200, 200, 429, 429, 429]);
    expect((await serve('{}', 'text/plain')).status).toBe(415);
    expect((await serve('not json')).status).toBe(400);
    expect((await serve('{"v":1}')).status).toBe(400);
    const stats = core.stats();
    // The second client got one of its two runs: the identity's third.
    expect(stats).toMatchObject({ sessions: 2, runs: { total: 3, byPath: { numbers: 3 } } });
    expect(stats.budgets.sessions).toEqual({ used: 2, limit: 10_000 });
    expect(stats.counters).toEqual(
      counters({
        polls: { news: 2 },
        runs: { started: 3 },
        refusals: {
          'identity-sessions': { status: 429, count: 3 },
          'identity-runs': { status: 429, count: 1 },
          'content-type': { status: 415, count: 1 },
          parse: { status: 400, count: 1 },
          invalid: { status: 400, count: 1 },
        },
      }),
    );
  });

  it('counts a createContext that throws as a context refusal', async () => {
    const { core, poll } = setUp({
      createContext: () => {
        throw new TRPCError({ code: 'UNAUTHORIZED', message: 'no' });
      },
    });
    expect((await poll([{ key: 'a', path: 'numbers' }])).status).toBe(401);
    expect(core.stats().counters.refusals).toEqual({ context: { status: 401, count: 1 } });
  });

  it('counts a lost run, a resumed run, an adopted run and a gone cursor', async () => {
    const { core, poll, emitter } = setUp({ holdMs: 100 });
    const run = (await poll([{ key: 't', path: 'tracked' }])).json.results.t!.run!;
    emitter.emit('t', 'e1');
    await tick();
    const withEvent = await poll([{ key: 't', path: 'tracked', cursor: { run, seq: 0 } }]);
    expect(withEvent.json.results.t!.events).toHaveLength(1);
    // Acknowledged, then the client comes back with a cursor of another instance's run at the same event: adopted.
    await poll([{ key: 't', path: 'tracked', cursor: { run, seq: 1 } }]);
    const adopted = await poll([{ key: 't', path: 'tracked', cursor: { run: 'elsewhere', seq: 4, lastEventId: 'e1' } }]);
    expect(adopted.json.results.t).toEqual({ run });
    // An untracked run the server does not know, past its first event: resume-lost. One at seq 0 starts again: resumed.
    const lost = await poll([
      { key: 't', path: 'tracked', cursor: { run, seq: 1 } },
      { key: 'lost', path: 'numbers', cursor: { run: 'unknown', seq: 3 } },
      { key: 'fresh', path: 'numbers', cursor: { run: 'unknown', seq: 0 } },
      { key: 'g', path: 'gone' },
    ]);
    expect((lost.json.results.lost!.end as { reason?: string }).reason).toBe('resume-lost');
    await tick();
    const stats = core.stats();
    expect(stats.runs).toEqual({ total: 3, byPath: { tracked: 1, numbers: 1, gone: 1 } });
    expect(stats.counters).toEqual(
      counters({
        // News: the first, the one with the event, the one with the lost end. The acknowledging poll and the
        // adoption had nothing new: held until their hold expired (the adoption then names the run it took over).
        polls: { news: 3, holdExpired: 2 },
        runs: { started: 2, resumed: 1, adopted: 1 },
        cursorErrors: { 'resume-lost': 1, gone: 1 },
        eventsDelivered: 1,
      }),
    );
  });
});
