import { describe, expect, it } from 'vitest';
import { createLongPollClient, createTestRouter, recorder, startServer, useCleanup, waitFor, type TestPost, type TestRouter } from '../../src';

const cleanup = useCleanup();

describe('stats through the node adapter', () => {
  it('longPoll.stats() counts a real client: its run, its held poll, the event it got and its unsubscribe', async () => {
    const fixture = createTestRouter();
    const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }), holdMs: 5_000 });
    cleanup(() => server.close());
    const client = createLongPollClient<TestRouter>(server.url, { holdMs: 5_000 });
    const rec = recorder<TestPost>();
    const sub = client.post.onAdd.subscribe({ lastEventId: '0' }, rec.callbacks);
    await rec.untilStarted();
    await waitFor(() => server.longPoll.stats().heldPolls === 1, 5_000, 'the client held');
    expect(server.longPoll.stats()).toMatchObject({ sessions: 1, runs: { total: 1, byPath: { 'post.onAdd': 1 } } });

    fixture.feed.publish({ text: 'hi', at: new Date() });
    await rec.untilData(1);
    const stats = server.longPoll.stats();
    expect(stats.counters.runs).toEqual({ started: 1, resumed: 0, adopted: 0 });
    expect(stats.counters.eventsDelivered).toBe(1);
    expect(stats.counters.polls.news).toBeGreaterThanOrEqual(2);
    expect(stats.counters.refusals).toEqual({});

    sub.unsubscribe();
    await waitFor(() => server.longPoll.stats().runs.total === 0, 5_000, 'the run stopped');
  });
});
