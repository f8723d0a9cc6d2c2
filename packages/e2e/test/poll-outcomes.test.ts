import type { PollOutcomeInfo } from '@trpc-longpoll/client';
import { describe, expect, it, vi } from 'vitest';
import {
  createLongPollClient,
  createTestRouter,
  rawPoller,
  recorder,
  startProxy,
  startServer,
  useCleanup,
  waitFor,
  type Fault,
  type TestPost,
  type TestRouter,
} from '../src';

/** The link's `onPollOutcome` with the real link, a real server and a proxy that fails on demand. */
const cleanup = useCleanup();
const retry = { initialDelayMs: 20, maxDelayMs: 100 };

async function setUp(opts: { onPollOutcome?: (outcome: PollOutcomeInfo) => void; watchdogMarginMs?: number } = {}) {
  const fixture = createTestRouter();
  const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }), holdMs: 500 });
  cleanup(() => server.close());
  let fault: Fault | undefined;
  const proxy = await startProxy({ upstreams: [server.url], fault: () => fault });
  cleanup(() => proxy.close());
  const outcomes: PollOutcomeInfo[] = [];
  const client = createLongPollClient<TestRouter>(proxy.url, {
    holdMs: 500,
    retry,
    ...(opts.watchdogMarginMs === undefined ? {} : { watchdogMarginMs: opts.watchdogMarginMs }),
    onPollOutcome: (outcome) => {
      outcomes.push(outcome);
      opts.onPollOutcome?.(outcome);
    },
  });
  const rec = recorder<TestPost>();
  const sub = client.post.onAdd.subscribe({ lastEventId: '0' }, rec.callbacks);
  cleanup(() => sub.unsubscribe());
  /** Waits for the first outcome after `from` that `match` accepts, and returns it. */
  const next = async <T extends PollOutcomeInfo>(match: (o: PollOutcomeInfo) => o is T, from: number, what: string): Promise<T> => {
    await waitFor(() => outcomes.slice(from).some(match), 10_000, what);
    return outcomes.slice(from).find(match)!;
  };
  return { fixture, server, proxy, outcomes, rec, next, setFault: (f: Fault | undefined) => (fault = f) };
}

const answered = (o: PollOutcomeInfo): o is Extract<PollOutcomeInfo, { type: 'answered' }> => o.type === 'answered';
const failed = (o: PollOutcomeInfo): o is Extract<PollOutcomeInfo, { type: 'failed' }> => o.type === 'failed';
const stale = (o: PollOutcomeInfo): o is Extract<PollOutcomeInfo, { type: 'stale' }> => o.type === 'stale';

describe('onPollOutcome', () => {
  it('reports answers with their events, an HTTP failure with its status and backoff, and a network failure', async () => {
    const { fixture, server, proxy, outcomes, rec, next, setFault } = await setUp();
    await rec.untilStarted();
    const started = outcomes.find(answered)!;
    expect(started).toMatchObject({ type: 'answered', poll: 1, subscriptions: 1, events: 0, results: 1, pauseMs: 0 });
    expect(started.client).toMatch(/\S/);

    await waitFor(() => server.longPoll.stats().heldPolls === 1, 5_000, 'the poll held');
    let from = outcomes.length;
    fixture.feed.publish({ text: 'hi', at: new Date() });
    await rec.untilData(1);
    expect(await next(answered, from, 'the answer with the post')).toMatchObject({ subscriptions: 1, events: 1, results: 1 });

    // A load balancer with no healthy upstream: 502, which the link retries after a backoff.
    from = outcomes.length;
    // The held poll passes (it went through before); its hold of 500 ms runs out and the next one meets the fault.
    setFault({ kind: 'status', status: 502 });
    const http = await next(failed, from, 'an HTTP failure');
    expect(http).toMatchObject({ type: 'failed', reason: 'http', status: 502, subscriptions: 1 });
    expect(http.backoffMs).toBeGreaterThanOrEqual(0);
    expect(http.backoffMs).toBeLessThanOrEqual(retry.maxDelayMs);
    expect(http.error.message).toMatch(/502/);

    // The proxy goes away: the link cannot connect at all.
    from = outcomes.length;
    await proxy.close();
    const network = await next((o): o is Extract<PollOutcomeInfo, { type: 'failed' }> => failed(o) && o.reason === 'network', from, 'a network failure');
    expect(network).toMatchObject({ type: 'failed', reason: 'network', subscriptions: 1 });
    expect(network.backoffMs).toBeTypeOf('number');
    // Failures in a row count toward the backoff, which stays within its ceiling.
    expect(network.backoffMs).toBeLessThanOrEqual(retry.maxDelayMs);
    expect(outcomes.map((o) => o.poll)).toEqual([...outcomes.map((o) => o.poll)].sort((a, b) => a - b));
  });

  it('reports a poll the watchdog gave up on', async () => {
    const { outcomes, rec, next, setFault } = await setUp({ watchdogMarginMs: 100 });
    await rec.untilStarted();
    const from = outcomes.length;
    // Answers held back 3 s: past hold (500 ms) + hold/16 + the 100 ms margin, the link aborts the poll.
    setFault({ kind: 'delay', ms: 3_000 });
    const watchdog = await next((o): o is Extract<PollOutcomeInfo, { type: 'failed' }> => failed(o) && o.reason === 'watchdog', from, 'the watchdog');
    expect(watchdog).toMatchObject({ type: 'failed', reason: 'watchdog', subscriptions: 1 });
    expect(watchdog.error.message).toMatch(/no answer within 631 ms/);
    expect(watchdog.durationMs).toBeGreaterThanOrEqual(600);
    expect(watchdog.backoffMs).toBeLessThanOrEqual(retry.maxDelayMs);
  });

  it('reports a stale answer when another poll of the same client id got ahead, and keeps polling through a throwing hook', async () => {
    let throws = 0;
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
    cleanup(() => logged.mockRestore());
    const { server, outcomes, rec, next } = await setUp({
      onPollOutcome: () => {
        throws++;
        throw new Error('a broken logger');
      },
    });
    await rec.untilStarted();
    await waitFor(() => server.longPoll.stats().heldPolls === 1, 5_000, 'the poll held');
    const { client, poll } = outcomes.find(answered)!;
    const from = outcomes.length;
    // A poll numbered far ahead under the link's client id: the link's next poll is stale.
    const raw = rawPoller(fetch, server.url);
    expect((await raw.poll(client, poll + 100, [{ key: 'other', path: 'post.onAdd' }])).status).toBe(200);
    const first = await next(stale, from, 'a stale answer');
    expect(first).toMatchObject({ type: 'stale', client, inARow: 1, subscriptions: 1 });
    expect(first.poll).toBeGreaterThan(poll);
    expect(first.poll).toBeLessThan(poll + 100);
    expect(first.backoffMs).toBeGreaterThanOrEqual(0);
    // Every outcome went through the throwing hook, and the link got past the stale run under a new client id.
    await rec.untilStarted({ times: 2, ms: 15_000 });
    expect(throws).toBe(outcomes.length);
    expect(logged.mock.calls.length).toBe(throws);
    expect(logged.mock.calls[0]).toEqual(['trpc-longpoll: onPollOutcome threw', new Error('a broken logger')]);
    expect(outcomes.some((o) => stale(o) && o.newClient)).toBe(true);
  });
});
