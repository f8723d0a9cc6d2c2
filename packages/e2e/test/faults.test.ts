import { TRPCClientError } from '@trpc/client';
import { describe, expect, it } from 'vitest';
import {
  createLongPollClient,
  createTestRouter,
  recorder,
  startProxy,
  startServer,
  useCleanup,
  type Fault,
  type TestPost,
  type TestRouter,
} from '../src';

/** Networks lose answers; a cursor turns a lost answer into a resend, never a gap or a repeat. */
const cleanup = useCleanup();
const retry = { initialDelayMs: 10, maxDelayMs: 50 };

async function behindProxy(fault: (info: { n: number; method: string }) => Fault | undefined, holdMs = 1_000, watchdogMarginMs?: number) {
  const fixture = createTestRouter();
  const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }), holdMs });
  cleanup(() => server.close());
  const proxy = await startProxy({ upstreams: [server.url], fault });
  cleanup(() => proxy.close());
  const client = createLongPollClient<TestRouter>(proxy.url, { holdMs, retry, ...(watchdogMarginMs === undefined ? {} : { watchdogMarginMs }) });
  return { fixture, server, proxy, client };
}

/** A small seeded generator, so a failing mix of faults can be replayed. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('faults between client and server', () => {
  it('every third answer lost after the server sent it: every event exactly once, in order', async () => {
    let dropped = 0;
    const { fixture, proxy, client } = await behindProxy(({ n, method }) => {
      if (method !== 'POST' || n % 3 !== 0) return undefined;
      dropped++;
      return { kind: 'drop-response' };
    });
    const posts = recorder<TestPost>();
    const ticks = recorder();
    const subs = [client.post.onAdd.subscribe(undefined, posts.callbacks), client.ticks.subscribe({ room: 'x' }, ticks.callbacks)];
    cleanup(() => subs.forEach((sub) => sub.unsubscribe()));
    await posts.untilStarted({ ms: 10_000 });
    await ticks.untilStarted({ ms: 10_000 });

    const total = 60;
    for (let i = 1; i <= total; i++) {
      fixture.feed.publish({ text: `p${i}`, at: new Date(i) });
      fixture.ticker.emit('x', i);
      // Spread over many polls, so that many answers carrying events get dropped.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await posts.untilData(total, { ms: 15_000 });
    await ticks.untilData(total, { ms: 15_000 });

    const numbers = Array.from({ length: total }, (_, i) => i + 1);
    expect(posts.data().map((d) => Number(d.id))).toEqual(numbers);
    expect(ticks.data()).toEqual(numbers);
    expect([...posts.errors(), ...ticks.errors()]).toEqual([]);
    // The test is only worth something if answers were really lost.
    expect(dropped).toBeGreaterThanOrEqual(5);
    expect(proxy.requests()).toBeGreaterThanOrEqual(15);
  });

  it('a 503 with Retry-After: 0 shows connecting, then started and pending again, losing nothing', async () => {
    // The default 20 s hold: recovery must show without waiting for a held poll to end or an event to arrive.
    const { fixture, client } = await behindProxy(({ n }) => (n === 2 ? { kind: 'status', status: 503, retryAfter: 0 } : undefined), 20_000);
    const rec = recorder();
    const errors: unknown[] = [];
    const sub = client.post.onAdd.subscribe(undefined, {
      ...rec.callbacks,
      onConnectionStateChange: (state) => {
        if (state.error) errors.push(state.error);
        rec.callbacks.onConnectionStateChange(state);
      },
    });
    cleanup(() => sub.unsubscribe());
    // Poll 1 starts the run; poll 2, the first held one, meets the 503.
    await rec.untilStarted({ times: 2 });
    fixture.feed.publish({ text: 'after', at: new Date(1) });
    await rec.untilData(1, { ms: 10_000 });

    expect(rec.story()).toEqual(['connecting', 'started', 'pending', 'connecting', 'started', 'pending', 'data']);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(TRPCClientError);
    expect((errors[0] as TRPCClientError<TestRouter>).message).toBe('The poll failed with HTTP 503');
    expect(rec.data()).toEqual([{ id: '1', data: { text: 'after', at: new Date(1) } }]);
    expect(rec.errors()).toEqual([]);
  });

  it('a body cut in half and a late answer are retried like a lost one', async () => {
    const { fixture, client } = await behindProxy(({ n }) => {
      if (n === 3) return { kind: 'cut-mid-body' };
      if (n === 5) return { kind: 'delay', ms: 200 };
      return undefined;
    });
    const rec = recorder<TestPost>();
    const sub = client.post.onAdd.subscribe(undefined, rec.callbacks);
    cleanup(() => sub.unsubscribe());
    await rec.untilStarted({ ms: 10_000 });
    for (let i = 1; i <= 10; i++) {
      fixture.feed.publish({ text: `p${i}`, at: new Date(i) });
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await rec.untilData(10, { ms: 10_000 });
    expect(rec.data().map((d) => d.id)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
    expect(rec.errors()).toEqual([]);
  });

  it('an answer later than the watchdog is abandoned and the poll retried, losing nothing', async () => {
    // hold 300 + 300/16 + margin 100 ≈ 419 ms; the third answer comes 1.5 s late.
    const { fixture, client } = await behindProxy(({ n }) => (n === 3 ? { kind: 'delay', ms: 1_500 } : undefined), 300, 100);
    const rec = recorder<TestPost>();
    const sub = client.post.onAdd.subscribe(undefined, rec.callbacks);
    cleanup(() => sub.unsubscribe());
    await rec.untilStarted();
    for (let i = 1; i <= 10; i++) {
      fixture.feed.publish({ text: `p${i}`, at: new Date(i) });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await rec.untilData(10, { ms: 10_000 });
    expect(rec.data().map((d) => Number(d.id))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(rec.log).toContainEqual({ kind: 'state', state: 'connecting', error: expect.stringMatching(/^The poll got no answer within \d+ ms$/) });
    expect(rec.errors()).toEqual([]);
  });

  it.each([1, 2, 3, 4])('a seeded mix of every fault (seed %i) loses, repeats and reorders nothing', async (seed) => {
    const random = seeded(seed);
    const { fixture, client } = await behindProxy(() => {
      const r = random();
      if (r < 0.15) return { kind: 'drop-response' };
      if (r < 0.25) return { kind: 'cut-mid-body' };
      if (r < 0.3) return { kind: 'status', status: 502 };
      if (r < 0.4) return { kind: 'delay', ms: 30 };
      return undefined;
    }, 500);
    const countdown = recorder();
    const flaky = recorder();
    const ticks = recorder();
    client.countdown.subscribe({ from: 9 }, countdown.callbacks);
    const subs = [client.flaky.subscribe(undefined, flaky.callbacks), client.ticks.subscribe({ room: 'z' }, ticks.callbacks)];
    cleanup(() => subs.forEach((sub) => sub.unsubscribe()));
    await ticks.untilStarted({ ms: 10_000 });
    for (let i = 0; i < 30; i++) {
      fixture.ticker.emit('z', i);
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    await countdown.untilEnded({ ms: 10_000 });
    await flaky.untilData(2, { ms: 10_000 });
    await ticks.untilData(30, { ms: 10_000 });

    expect(countdown.data()).toEqual([9, 8, 7]);
    expect(countdown.log.slice(-3).map((e) => e.kind)).toEqual(['stopped', 'state', 'complete']);
    expect(flaky.data()).toEqual([
      { id: '1', data: 'ok' },
      { id: '2', data: 'ok' },
    ]);
    expect(ticks.data()).toEqual(Array.from({ length: 30 }, (_, i) => i));
    for (const rec of [countdown, flaky, ticks]) expect(rec.errors()).toEqual([]);
  });
});
