import { isLongPollCursorError } from '@trpc-longpoll/client';
import { describe, expect, it } from 'vitest';
import {
  createLongPollClient,
  createTestRouter,
  recorder,
  startProxy,
  startServer,
  useCleanup,
  waitFor,
  type TestPost,
  type TestRouter,
} from '../src';

/**
 * A cursor is all a server needs: a client whose server vanished continues
 * on a fresh one, which has none of the old one's state.
 */
const cleanup = useCleanup();
const retry = { initialDelayMs: 20, maxDelayMs: 100 };

async function twoServersOneRouter() {
  const fixture = createTestRouter();
  const start = async () => {
    const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }), holdMs: 1_000 });
    cleanup(() => server.close());
    return server;
  };
  const first = await start();
  let url = first.url;
  const client = createLongPollClient<TestRouter>('', { url: () => url, holdMs: 1_000, retry });
  return { fixture, first, start, client, pointAt: (next: string) => (url = next) };
}

describe('resuming on a server that lost the state', () => {
  it('tracked: continues from lastEventId, no loss, no duplicates', async () => {
    const { fixture, first, start, client, pointAt } = await twoServersOneRouter();
    const rec = recorder<TestPost>();
    const sub = client.post.onAdd.subscribe(undefined, rec.callbacks);
    cleanup(() => sub.unsubscribe());
    await rec.untilStarted();
    for (const text of ['a', 'b', 'c']) fixture.feed.publish({ text, at: new Date() });
    await rec.untilData(3);

    await first.close();
    // Published while no server runs the procedure: the new run must replay them.
    for (const text of ['d', 'e']) fixture.feed.publish({ text, at: new Date() });
    const second = await start();
    pointAt(second.url);
    await waitFor(() => fixture.started.filter((s) => s === 'onAdd').length === 2, 10_000, 'the procedure to restart');
    for (const text of ['f', 'g']) fixture.feed.publish({ text, at: new Date() });
    const received = await rec.untilData(7, { ms: 10_000 });

    expect(received.map((d) => d.id)).toEqual(['1', '2', '3', '4', '5', '6', '7']);
    expect(received.map((d) => d.data.text).join('')).toBe('abcdefg');
    expect(rec.errors()).toEqual([]);
    // Whether the outage showed (a refused connection) or not (a draining server's pause), the client ends up live.
    const story = rec.story();
    expect(story.lastIndexOf('started')).toBeGreaterThan(story.lastIndexOf('connecting'));
  });

  it('untracked: a typed resume-lost error, not silent loss', async () => {
    const { fixture, first, start, client, pointAt } = await twoServersOneRouter();
    const rec = recorder();
    client.ticks.subscribe({ room: 'r' }, rec.callbacks);
    await rec.untilStarted();
    fixture.ticker.emit('r', 1);
    await rec.untilData(1);

    await first.close();
    const second = await start();
    pointAt(second.url);
    const error = await rec.firstError({ ms: 10_000 });
    expect(isLongPollCursorError(error)).toBe(true);
    expect(isLongPollCursorError(error) && error.reason).toBe('resume-lost');
    expect(error.data).toMatchObject({ code: 'CONFLICT', path: 'ticks' });
    // The new server did not start a run it could not honestly continue.
    expect(fixture.started.filter((s) => s === 'ticks:r')).toHaveLength(1);
  });

  it('a retryable error mid-stream restarts the run after showing connecting, without onError', async () => {
    const fixture = createTestRouter();
    const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }), holdMs: 1_000 });
    cleanup(() => server.close());
    const client = createLongPollClient<TestRouter>(server.url, { holdMs: 1_000, retry });
    const rec = recorder();
    const sub = client.flaky.subscribe(undefined, rec.callbacks);
    cleanup(() => sub.unsubscribe());
    await rec.untilData(2, { ms: 10_000 });

    expect(rec.story({ errors: true })).toEqual(['connecting', 'started', 'pending', 'data', 'connecting(transient)', 'started', 'pending', 'data']);
    expect(rec.data()).toEqual([
      { id: '1', data: 'ok' },
      { id: '2', data: 'ok' },
    ]);
    expect(fixture.started.filter((s) => s === 'flaky')).toHaveLength(2);
  });

  it('a client away longer than the idle timeout: tracked resumes, untracked gets resume-lost', async () => {
    const fixture = createTestRouter();
    const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }), holdMs: 200, idleTimeoutMs: 600 });
    cleanup(() => server.close());
    let outage = false;
    // The outage lasts until the server has expired the session; Retry-After: 1 paces the client meanwhile.
    // (The idle timeout stays well above a loaded machine's gap between two polls, or the session would expire early.)
    const proxy = await startProxy({ upstreams: [server.url], fault: () => (outage ? { kind: 'status', status: 503, retryAfter: 1 } : undefined) });
    cleanup(() => proxy.close());
    const client = createLongPollClient<TestRouter>(proxy.url, { holdMs: 200, retry });
    const posts = recorder<TestPost>();
    const ticks = recorder();
    const sub = client.post.onAdd.subscribe(undefined, posts.callbacks);
    cleanup(() => sub.unsubscribe());
    client.ticks.subscribe({ room: 'q' }, ticks.callbacks);
    await posts.untilStarted();
    await ticks.untilStarted();
    fixture.feed.publish({ text: 'a', at: new Date() });
    fixture.ticker.emit('q', 1);
    await posts.untilData(1);
    await ticks.untilData(1);

    outage = true;
    await posts.untilInterrupted();
    fixture.feed.publish({ text: 'b', at: new Date() });
    await waitFor(() => fixture.finallies.length === 2, 3_000, 'the server to expire the session');
    outage = false;
    fixture.feed.publish({ text: 'c', at: new Date() });

    await posts.untilData(3, { ms: 10_000 });
    expect(posts.data().map((d) => d.id)).toEqual(['1', '2', '3']);
    const error = await ticks.firstError({ ms: 10_000 });
    expect(isLongPollCursorError(error) && error.reason).toBe('resume-lost');
  });
});

describe('behind a load balancer without sticky sessions', () => {
  it('tracked events arrive once each, and alternating instances do not turn polling into a hot loop', async () => {
    const fixture = createTestRouter();
    const instances = await Promise.all(
      [1, 2].map(() => startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }), holdMs: 500 })),
    );
    for (const instance of instances) cleanup(() => instance.close());
    const proxy = await startProxy({ upstreams: instances.map((instance) => instance.url) });
    cleanup(() => proxy.close());
    const client = createLongPollClient<TestRouter>(proxy.url, { holdMs: 500, retry });
    const rec = recorder<TestPost>();
    // A tracked procedure with no position yet starts "from now" wherever it runs, so an event published before the
    // client's first one could fall between two instances' runs; a starting position closes that window.
    const sub = client.post.onAdd.subscribe({ lastEventId: '0' }, rec.callbacks);
    cleanup(() => sub.unsubscribe());
    await rec.untilStarted();
    const begun = proxy.requests();
    for (let i = 1; i <= 6; i++) {
      fixture.feed.publish({ text: `p${i}`, at: new Date(i) });
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await rec.untilData(6, { ms: 10_000 });

    expect(rec.data().map((d) => d.id)).toEqual(['1', '2', '3', '4', '5', '6']);
    // ~1.5 s of publishing with a 500 ms hold: a handful of polls, where answering every resumed run at once made hundreds.
    expect(proxy.requests() - begun).toBeLessThan(40);
    // Every poll lands on the instance that did not answer the previous one; each instance adopts its own run (the
    // client's lastEventId lines up with it) instead of restarting the procedure, so there is one run per instance.
    expect(fixture.started.filter((s) => s === 'onAdd').length).toBe(2);
  });
});
