import { TRPCError } from '@trpc/server';
import { describe, expect, it } from 'vitest';
import type { PollRequest } from '@trpc-longpoll/protocol';
import {
  comparable,
  createLocks,
  createLongPollClient,
  createTestRouter,
  recorder,
  startServer,
  useCleanup,
  waitFor,
  type Recorded,
  type Recorder,
  type TestPost,
  type TestRouter,
} from '../src';

/**
 * `shareAcrossTabs` in one Node process: Node has the browser's
 * `BroadcastChannel` (it delivers between instances of one process) but no
 * `navigator.locks`, so the tabs get a Web Locks stand-in below. Each "tab" is
 * a tRPC client of its own, as each browser tab is.
 */
const cleanup = useCleanup();


async function setUp() {
  const fixture = createTestRouter();
  /** Set it to make `createContext` refuse every poll. */
  const refuse = { now: false };
  /** Fails the polls in flight as a dropped network would. */
  const cuts = new Set<(error: Error) => void>();
  const cut = () => {
    for (const fail of cuts) fail(new Error('The network is down'));
  };
  const cuttable = (url: string, init: RequestInit) =>
    new Promise<Response>((resolve, reject) => {
      cuts.add(reject);
      fetch(url, init)
        .then(resolve, reject)
        .finally(() => cuts.delete(reject));
    });
  const server = await startServer({
    router: fixture.router,
    createContext: () => {
      if (refuse.now) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Who are you?', cause: new Error('no cookie') });
      return { user: 'ann' };
    },
    holdMs: 2_000,
  });
  cleanup(() => server.close());
  const locks = createLocks();
  const name = `cross-tab-${Math.random().toString(36).slice(2)}`;
  /** Every poll any tab sent, with the tab that sent it. */
  const polls: Array<{ tab: number; body: PollRequest }> = [];

  function openTab(tab: number) {
    const closing = new AbortController();
    const client = createLongPollClient<TestRouter>(server.url, {
      holdMs: 2_000,
      shareAcrossTabs: { name, locks, closeSignal: closing.signal, handoverMs: 2_000 } as never,
      retry: { initialDelayMs: 10, maxDelayMs: 20 },
      fetch: (url, init) => {
        polls.push({ tab, body: JSON.parse(String(init.body)) as PollRequest });
        return cuttable(url, init);
      },
    });
    const close = () => closing.abort();
    cleanup(close);
    return { tab, client, close };
  }

  /** A client that polls on its own, with the same options: the reference the shared tabs must match. */
  function soloClient() {
    return createLongPollClient<TestRouter>(server.url, {
      holdMs: 2_000,
      retry: { initialDelayMs: 10, maxDelayMs: 20 },
      fetch: cuttable,
    });
  }
  return { fixture, server, polls, openTab, soloClient, refuse, cut };
}

type Tab = ReturnType<Awaited<ReturnType<typeof setUp>>['openTab']>;

function follow(tab: Tab, room: string) {
  const ticks = recorder();
  const posts = recorder<TestPost>();
  const a = tab.client.ticks.subscribe({ room }, ticks.callbacks);
  const b = tab.client.post.onAdd.subscribe({}, posts.callbacks);
  cleanup(() => {
    a.unsubscribe();
    b.unsubscribe();
  });
  return { ticks, posts };
}

const ids = (rec: Recorder<TestPost>) => rec.data().map((d) => d.id);

describe('shareAcrossTabs: one poll for all tabs', () => {
  it('three tabs share one held poll and each gets every event once', async () => {
    const { fixture, server, polls, openTab } = await setUp();
    const tabs = [0, 1, 2].map(openTab);
    const recs = tabs.map((tab) => follow(tab, 'lobby'));
    for (const { ticks, posts } of recs) {
      await ticks.untilStarted();
      await posts.untilStarted();
    }
    // One tab polls for all: one client id, every tab's two subscriptions in its polls.
    const leaders = new Set(polls.map((p) => p.tab));
    expect(leaders.size).toBe(1);
    expect(new Set(polls.map((p) => p.body.client)).size).toBe(1);
    await waitFor(() => polls.at(-1)!.body.subscriptions.length === 6, 5_000, 'a poll carrying all six subscriptions');

    await waitFor(() => server.inFlight() === 1, 5_000, 'one held poll');
    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(server.inFlight()), 20);
    for (let i = 1; i <= 5; i++) {
      fixture.ticker.emit('lobby', i);
      fixture.feed.publish({ text: `m${i}`, at: new Date() });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const { ticks, posts } of recs) {
      await ticks.untilData(5);
      await posts.untilData(5);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    clearInterval(sampler);
    expect(Math.max(...samples)).toBe(1);
    for (const { ticks, posts } of recs) {
      expect(ticks.data()).toEqual([1, 2, 3, 4, 5]);
      expect(ids(posts)).toEqual(['1', '2', '3', '4', '5']);
      // Superjson's Date survived the trip through the leader tab: each tab decodes its own results.
      expect(posts.data()[0]!.data.at).toBeInstanceOf(Date);
      expect(ticks.failures()).toEqual([]);
    }
  });

  it('when the leader tab closes, the next one continues the same session: nothing lost or repeated, untracked included', async () => {
    const { fixture, server, polls, openTab } = await setUp();
    const tabs = [0, 1, 2].map(openTab);
    const recs = tabs.map((tab) => follow(tab, 'lobby'));
    for (const { ticks, posts } of recs) {
      await ticks.untilStarted();
      await posts.untilStarted();
    }
    await waitFor(() => polls.at(-1)!.body.subscriptions.length === 6, 5_000, 'a poll carrying all six subscriptions');
    fixture.ticker.emit('lobby', 1);
    fixture.feed.publish({ text: 'm1', at: new Date() });
    for (const { ticks, posts } of recs) {
      await ticks.untilData(1);
      await posts.untilData(1);
    }

    const first = polls.at(-1)!;
    const leader = tabs[first.tab]!;
    const before = polls.length;
    leader.close();
    // Published while no tab polls: the server's runs buffer them for the session.
    for (let i = 2; i <= 4; i++) {
      fixture.ticker.emit('lobby', i);
      fixture.feed.publish({ text: `m${i}`, at: new Date() });
    }
    const rest = recs.filter((_, i) => i !== first.tab);
    for (const { ticks, posts } of rest) {
      await ticks.untilData(4);
      await posts.untilData(4);
    }
    const after = polls.slice(before).filter((p) => p.tab !== first.tab);
    expect(after.length).toBeGreaterThan(0);
    expect(new Set(after.map((p) => p.tab)).size).toBe(1);
    // The same client id, higher poll numbers: the server's session simply went on.
    for (const p of after) {
      expect(p.body.client).toBe(first.body.client);
      expect(p.body.poll).toBeGreaterThan(first.body.poll);
      // The closed tab's subscriptions are no longer carried, so the server cancels them.
      expect(p.body.subscriptions.length).toBe(4);
    }
    fixture.ticker.emit('lobby', 5);
    fixture.feed.publish({ text: 'm5', at: new Date() });
    for (const { ticks, posts } of rest) {
      await ticks.untilData(5);
      await posts.untilData(5);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const { ticks, posts } of rest) {
      expect(ticks.data()).toEqual([1, 2, 3, 4, 5]);
      expect(ids(posts)).toEqual(['1', '2', '3', '4', '5']);
      // No restart was needed: the untracked run went on (a restart would have been `resume-lost`).
      expect(ticks.failures()).toEqual([]);
      expect(posts.failures()).toEqual([]);
    }
    expect(fixture.started.filter((s) => s === 'ticks:lobby')).toHaveLength(3);
    await waitFor(() => fixture.finallies.filter((s) => s === 'ticks:lobby').length === 1, 5_000, 'the closed tab’s run to be cancelled');
    await waitFor(() => server.inFlight() === 1, 5_000, 'one held poll');
  });

  it('a tab that unsubscribes or closes drops out of the shared poll', async () => {
    const { fixture, polls, openTab } = await setUp();
    const tabs = [0, 1, 2].map(openTab);
    const rec = tabs.map((tab) => {
      const r = recorder();
      const sub = tab.client.ticks.subscribe({ room: `room${tab.tab}` }, r.callbacks);
      cleanup(() => sub.unsubscribe());
      return { r, sub };
    });
    for (const { r } of rec) await r.untilStarted();
    const leader = polls.at(-1)!.tab;
    const followers = [0, 1, 2].filter((t) => t !== leader);
    rec[followers[0]!]!.sub.unsubscribe();
    await waitFor(() => fixture.finallies.includes(`ticks:room${followers[0]}`), 5_000, 'the unsubscribed run to end');
    tabs[followers[1]!]!.close();
    await waitFor(() => fixture.finallies.includes(`ticks:room${followers[1]}`), 5_000, 'the closed tab’s run to end');
    expect(polls.at(-1)!.body.subscriptions.map((s) => s.path)).toEqual(['ticks']);
    fixture.ticker.emit(`room${leader}`, 7);
    await rec[leader]!.r.untilData(1);
  });
});

describe('shareAcrossTabs: a follower tab sees what a client of its own would', () => {
  type Client = ReturnType<typeof createLongPollClient<TestRouter>>;
  type Env = Awaited<ReturnType<typeof setUp>>;

  /** Runs `scenario` once in a client polling on its own and once in a follower tab (tab 0 leads), on fresh servers. */
  async function both(scenario: (client: Client, env: Env) => Promise<Recorded[]>) {
    const solo = await setUp();
    const alone = await scenario(solo.soloClient(), solo);
    const shared = await setUp();
    const [leader, follower] = [0, 1].map(shared.openTab);
    const lead = recorder();
    const sub = leader!.client.ticks.subscribe({ room: 'leader' }, lead.callbacks);
    cleanup(() => sub.unsubscribe());
    await lead.untilStarted();
    const followed = await scenario(follower!.client, shared);
    expect(new Set(shared.polls.map((p) => p.tab))).toEqual(new Set([0]));
    // Logs as the application sees them, with errors reduced to what a test can compare.
    return { alone: comparable(alone), followed: comparable(followed) };
  }

  function record(subscribe: (callbacks: Recorder['callbacks']) => { unsubscribe(): void }) {
    const rec = recorder();
    const sub = subscribe(rec.callbacks);
    cleanup(() => sub.unsubscribe());
    return rec;
  }

  it('a procedure that returns: data, stopped, idle, complete', async () => {
    const { alone, followed } = await both(async (client) => {
      const rec = record((cb) => client.countdown.subscribe({ from: 3 }, cb));
      await rec.untilComplete();
      return rec.log;
    });
    expect(followed).toEqual(alone);
    expect(alone.map((e) => e.kind)).toEqual(['state', 'started', 'state', 'data', 'data', 'data', 'stopped', 'state', 'complete']);
  });

  it('superjson data, decoded by the follower itself', async () => {
    const { alone, followed } = await both(async (client) => {
      const rec = record((cb) => client.rich.subscribe(undefined, cb));
      await rec.untilComplete();
      return rec.log;
    });
    expect(followed).toEqual(alone);
    const first = followed.find((e) => e.kind === 'data');
    expect((first?.data as { map: unknown } | undefined)?.map).toBeInstanceOf(Map);
  });

  it('a fatal subscription error, and a retryable one that restarts the run', async () => {
    const { alone, followed } = await both(async (client) => {
      const forbidden = record((cb) => client.forbidden.subscribe(undefined, cb));
      await forbidden.firstError();
      const flaky = record((cb) => client.flaky.subscribe(undefined, cb));
      await flaky.untilData(2);
      return [...forbidden.log, ...flaky.log];
    });
    expect(followed).toEqual(alone);
    expect(followed).toContainEqual(expect.objectContaining({ kind: 'error', code: 'FORBIDDEN' }));
    expect(followed).toContainEqual({ kind: 'state', state: 'connecting', error: 'transient' });
  });

  it('a poll-wide network failure: connecting with the error, then started again, nothing lost', async () => {
    const { alone, followed } = await both(async (client, env) => {
      const rec = record((cb) => client.post.onAdd.subscribe({}, cb));
      await rec.untilStarted();
      await waitFor(() => env.server.inFlight() === 1, 5_000, 'a held poll');
      env.cut();
      await rec.untilStarted({ times: 2 });
      env.fixture.feed.publish({ text: 'after', at: new Date() });
      await rec.untilData(1);
      return rec.log;
    });
    expect(followed.map((e) => ({ ...e, data: undefined }))).toEqual(alone.map((e) => ({ ...e, data: undefined })));
    expect(followed).toContainEqual({ kind: 'state', state: 'connecting', error: 'The network is down' });
  });

  it('a poll-wide fatal error (createContext refusing) ends the follower’s subscriptions with the server’s shape', async () => {
    const { alone, followed } = await both(async (client, env) => {
      const rec = record((cb) => client.ticks.subscribe({ room: 'x' }, cb));
      await rec.untilStarted();
      env.refuse.now = true;
      // The next poll (after this event's answer) is refused.
      env.fixture.ticker.emit('x', 1);
      await rec.firstError();
      return rec.log;
    });
    expect(followed).toEqual(alone);
    expect(followed.at(-1)).toEqual({ kind: 'error', message: 'Who are you?', code: 'UNAUTHORIZED', name: 'TRPCClientError' });
  });
});
