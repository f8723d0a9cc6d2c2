import { EventEmitter, on } from 'node:events';
import { initTRPC, tracked } from '@trpc/server';
import type { PollRequest, PollResponse } from '@trpc-longpoll/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { createLongPollCore, type LongPollCore } from '../src/core/pipeline';

/** The core without HTTP: polls in, answers out. */
function setUp(opts: { maxBatchEvents?: number; maxBufferedEvents?: number; holdMs?: number } = {}) {
  const t = initTRPC.create();
  const emitter = new EventEmitter();
  const starts: string[] = [];
  const pulled = { count: 0 };
  const router = t.router({
    numbers: t.procedure.subscription(async function* ({ signal }) {
      starts.push('numbers');
      for await (const [value] of on(emitter, 'n', { signal })) yield value as number;
    }),
    endless: t.procedure.subscription(async function* () {
      for (;;) {
        pulled.count++;
        yield pulled.count;
      }
    }),
    log: t.procedure.input((raw) => raw as { lastEventId?: string } | undefined).subscription(async function* ({ input, signal }) {
      starts.push(`log:${input?.lastEventId ?? '-'}`);
      let id = Number(input?.lastEventId ?? 0);
      yield tracked(String(++id), id);
      await new Promise((resolve) => signal?.addEventListener('abort', resolve, { once: true }));
    }),
  });
  const core = createLongPollCore({ router, holdMs: opts.holdMs ?? 200, ...opts });
  cores.push(core);
  let pollNumber = 0;
  const poll = async (subscriptions: PollRequest['subscriptions'], client = 'c1', number = ++pollNumber) => {
    const body: PollRequest = { v: 1, client, poll: number, subscriptions };
    const answer = await core.serve({
      method: 'POST',
      url: '/',
      header: (name) => (name === 'content-type' ? 'application/json' : undefined),
      body: { text: JSON.stringify(body) },
      signal: new AbortController().signal,
      req: null,
      createContext: () => ({}),
    });
    return { status: answer.status, json: JSON.parse(answer.body) as PollResponse };
  };
  return { core, poll, emitter, starts, pulled };
}

const cores: LongPollCore[] = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((core) => core.close()));
});

describe('core', () => {
  it('answers a superseded poll empty, and a newer poll releases the held one', async () => {
    const { poll, core } = setUp({ holdMs: 5_000 });
    const first = await poll([{ key: 'a', path: 'numbers' }]);
    const run = first.json.results.a!.run!;
    const held = poll([{ key: 'a', path: 'numbers', cursor: { run, seq: 0 } }], 'c1', 10);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const newer = poll([{ key: 'a', path: 'numbers', cursor: { run, seq: 0 } }], 'c1', 11);
    expect((await held).json).toEqual({ v: 1, results: {} });
    // A stale poll says so, so a client whose numbering was taken over can notice.
    expect((await poll([{ key: 'a', path: 'numbers', cursor: { run, seq: 0 } }], 'c1', 5)).json).toEqual({ v: 1, results: {}, stale: true });
    // Closing answers the newest held poll at once.
    await core.close();
    expect((await newer).status).toBe(200);
  });

  it('cuts a long backlog into batches marked more, resending from the acknowledged seq', async () => {
    const { poll, emitter } = setUp({ maxBatchEvents: 2 });
    const run = (await poll([{ key: 'a', path: 'numbers' }])).json.results.a!.run!;
    for (let i = 1; i <= 5; i++) emitter.emit('n', i);
    // Let the run's pump move the five events into its buffer.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const first = await poll([{ key: 'a', path: 'numbers', cursor: { run, seq: 0 } }]);
    expect(first.json.more).toBe(true);
    expect(first.json.results.a!.events!.map((e) => e.data)).toEqual([1, 2]);
    // Not acknowledged: the same two again.
    const again = await poll([{ key: 'a', path: 'numbers', cursor: { run, seq: 0 } }]);
    expect(again.json.results.a!.events!.map((e) => e.seq)).toEqual([1, 2]);
    const next = await poll([{ key: 'a', path: 'numbers', cursor: { run, seq: 2 } }]);
    expect(next.json.results.a!.events!.map((e) => e.data)).toEqual([3, 4]);
    const last = await poll([{ key: 'a', path: 'numbers', cursor: { run, seq: 4 } }]);
    expect(last.json.results.a!.events!.map((e) => e.data)).toEqual([5]);
    expect(last.json.more).toBeUndefined();
  });

  it('stops pulling an iterator whose unacknowledged events reach the buffer limit', async () => {
    const { poll, pulled } = setUp({ maxBufferedEvents: 3, maxBatchEvents: 100 });
    const first = await poll([{ key: 'a', path: 'endless' }]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // The pump may have one `next()` in flight beyond the buffer.
    expect(pulled.count).toBeLessThanOrEqual(4);
    const run = first.json.results.a!.run!;
    const answer = await poll([{ key: 'a', path: 'endless', cursor: { run, seq: 0 } }]);
    expect(answer.json.results.a!.events).toHaveLength(3);
  });

  it('an unknown run: tracked restarts from lastEventId, untracked with seq > 0 is resume-lost, seq 0 restarts', async () => {
    const { poll, starts } = setUp();
    const tracked = await poll([{ key: 't', path: 'log', cursor: { run: 'elsewhere', seq: 4, lastEventId: '7' } }]);
    expect(tracked.json.results.t!.events).toEqual([{ seq: 1, id: '8', data: 8 }]);
    expect(starts).toEqual(['log:7']);

    const lost = await poll([{ key: 'u', path: 'numbers', cursor: { run: 'elsewhere', seq: 3 } }]);
    expect(lost.json.results.u!.end).toMatchObject({ type: 'error', reason: 'resume-lost', error: { data: { code: 'CONFLICT' } } });

    const fresh = await poll([{ key: 'z', path: 'numbers', cursor: { run: 'elsewhere', seq: 0 } }]);
    expect(fresh.json.results.z!.run).toEqual(expect.any(String));
    expect(starts).toEqual(['log:7', 'numbers']);
  });

  it('a lost answer that announced a resumed run does not start a second one', async () => {
    const { poll, starts } = setUp();
    const cursor = { run: 'elsewhere', seq: 4, lastEventId: '7' };
    const lostAnswer = await poll([{ key: 't', path: 'log', cursor }]);
    const again = await poll([{ key: 't', path: 'log', cursor }]);
    expect(again.json.results.t!.run).toBe(lostAnswer.json.results.t!.run);
    expect(again.json.results.t!.events).toEqual([{ seq: 1, id: '8', data: 8 }]);
    expect(starts).toEqual(['log:7']);
  });
});
