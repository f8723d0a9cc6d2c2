import { describe, expect, it } from 'vitest';
import { createLongPollClient, createTestRouter, recorder, startServer, useCleanup, waitFor, type TestRouter } from '../src';

/** What the server's procedures go through as clients come, go, and the server shuts down. */
const cleanup = useCleanup();

async function setUp(holdMs: number) {
  const fixture = createTestRouter();
  const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }), holdMs });
  cleanup(() => server.close());
  const client = () => createLongPollClient<TestRouter>(server.url, { holdMs });
  return { fixture, server, client };
}

describe('lifecycle', () => {
  it('unsubscribing runs the procedure’s finally promptly, whether others remain or not', async () => {
    const { fixture, client } = await setUp(20_000);
    const trpc = client();
    const ticks = recorder();
    const posts = recorder();
    const tickSub = trpc.ticks.subscribe({ room: 'parked' }, ticks.callbacks);
    const postSub = trpc.post.onAdd.subscribe(undefined, posts.callbacks);
    await ticks.untilStarted();
    await posts.untilStarted();

    // Both generators are parked in an await; the poll is held for 20 s.
    tickSub.unsubscribe();
    await waitFor(() => fixture.finallies.includes('ticks:parked'), 1_000, 'ticks finally (re-poll path)');
    expect(fixture.finallies).toEqual(['ticks:parked']);

    postSub.unsubscribe();
    await waitFor(() => fixture.finallies.includes('onAdd'), 1_000, 'onAdd finally (farewell path)');
    expect(fixture.finallies).toEqual(['ticks:parked', 'onAdd']);
  });

  it('a subscription the server ends: stopped, then idle, then complete', async () => {
    const { client } = await setUp(1_000);
    const rec = recorder();
    client().countdown.subscribe({ from: 3 }, rec.callbacks);
    await rec.untilComplete();
    expect(rec.log.slice(-3)).toEqual([{ kind: 'stopped' }, { kind: 'state', state: 'idle', error: null }, { kind: 'complete' }]);
    expect(rec.data()).toEqual([3, 2, 1]);
  });

  it('close() answers every held poll at once and stops every procedure', async () => {
    const { fixture, server, client } = await setUp(20_000);
    const recs = ['a', 'b', 'c'].map((room) => {
      const rec = recorder();
      const sub = client().ticks.subscribe({ room }, rec.callbacks);
      cleanup(() => sub.unsubscribe());
      return rec;
    });
    for (const rec of recs) await rec.untilStarted();
    await waitFor(() => server.inFlight() === 3, 5_000, 'three held polls');
    const answeredBefore = server.answered.length;

    const closing = server.longPoll.close();
    // Far below the 20 s hold: the polls were released, not timed out.
    await waitFor(() => server.answered.length >= answeredBefore + 3, 5_000, 'the held polls to be answered');
    await closing;
    expect(server.answered.slice(answeredBefore, answeredBefore + 3).map((a) => a.status)).toEqual([200, 200, 200]);
    await waitFor(() => fixture.finallies.length === 3, 1_000, 'every finally');
    expect([...fixture.finallies].sort()).toEqual(['ticks:a', 'ticks:b', 'ticks:c']);
  });

  it('aborting the signal passed to subscribe ends the subscription and the procedure', async () => {
    const { fixture, client } = await setUp(20_000);
    const rec = recorder();
    const controller = new AbortController();
    client().ticks.subscribe({ room: 'signal' }, { ...rec.callbacks, signal: controller.signal });
    await rec.untilStarted();
    controller.abort();
    await waitFor(() => fixture.finallies.includes('ticks:signal'), 1_000, 'the finally');
    fixture.ticker.emit('signal', 1);
    expect(rec.data()).toEqual([]);
    expect(rec.errors()).toEqual([]);
  });

  it('a consumer throwing in onData ends its own subscription, not its neighbours', async () => {
    const { fixture, client } = await setUp(1_000);
    const trpc = client();
    const thrower = recorder();
    const calm = recorder();
    trpc.ticks.subscribe(
      { room: 'loud' },
      {
        ...thrower.callbacks,
        onData: () => {
          throw new Error('consumer bug');
        },
      },
    );
    const sub = trpc.ticks.subscribe({ room: 'quiet' }, calm.callbacks);
    cleanup(() => sub.unsubscribe());
    await thrower.untilStarted();
    await calm.untilStarted();
    fixture.ticker.emit('loud', 1);
    expect((await thrower.firstError()).message).toBe('consumer bug');
    await waitFor(() => fixture.finallies.includes('ticks:loud'), 2_000, 'the thrower’s procedure to stop');
    fixture.ticker.emit('quiet', 2);
    await calm.untilData(1);
    expect(calm.data()).toEqual([2]);
  });

  it('subscribing again right after the last unsubscribe works, across the farewell', async () => {
    const { fixture, server, client } = await setUp(1_000);
    const trpc = client();
    for (let round = 1; round <= 3; round++) {
      const rec = recorder();
      const sub = trpc.ticks.subscribe({ room: `again${round}` }, rec.callbacks);
      await rec.untilStarted();
      fixture.ticker.emit(`again${round}`, round);
      await rec.untilData(1);
      expect(rec.data()).toEqual([round]);
      sub.unsubscribe();
      // Give the farewell a moment to be under way, so the next subscription races it.
      await new Promise((resolve) => setTimeout(resolve, round * 5));
    }
    await waitFor(() => fixture.finallies.length === 3, 2_000, 'every finally');
    await waitFor(() => server.inFlight() === 0, 2_000, 'no poll left');
  });
});
