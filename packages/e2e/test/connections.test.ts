import { describe, expect, it } from 'vitest';
import { createLongPollClient, createTestRouter, recorder, startServer, useCleanup, waitFor, type TestRouter } from '../src';

/**
 * Changing the set of subscriptions does not throw a connection away
 * (docs/protocol.md §8, "Re-polling"): the newer poll goes out beside the held
 * one, which the server answers when the newer arrives, and its connection
 * goes back to the pool. Aborting it instead closed its connection: a new TCP
 * (and TLS) handshake per change.
 */
const cleanup = useCleanup();

describe('subscription changes over HTTP/1.1 keep-alive', () => {
  it('four changes to the set reuse two connections instead of opening one each', async () => {
    const fixture = createTestRouter();
    const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }), holdMs: 5_000 });
    cleanup(() => server.close());
    let connections = 0;
    server.server.on('connection', () => connections++);
    const client = createLongPollClient<TestRouter>(server.url, { holdMs: 5_000 });

    const subs: { unsubscribe(): void }[] = [];
    const recs = ['a', 'b', 'c', 'd'].map((room, i) => {
      const rec = recorder();
      return { room, rec, i };
    });
    const counts: number[] = [];
    for (const { room, rec } of recs) {
      subs.push(client.ticks.subscribe({ room }, rec.callbacks));
      await rec.untilStarted();
      // Let the re-poll settle into its hold.
      await waitFor(() => server.longPoll.stats().heldPolls === 1, 5_000, 'a held poll');
      counts.push(connections);
    }
    subs[0]!.unsubscribe();
    await waitFor(() => server.longPoll.stats().runs.total === 3, 5_000, 'the first run stopped');
    await waitFor(() => server.longPoll.stats().heldPolls === 1, 5_000, 'a held poll');
    counts.push(connections);
    // 1 → 2 → 2 → 2 → 2: the replaced poll's connection returns to the pool and carries the next one.
    expect(counts[0]).toBe(1);
    expect(Math.max(...counts)).toBeLessThanOrEqual(2);

    fixture.ticker.emit('d', 1);
    await recs[3]!.rec.untilData(1);
    for (const sub of subs.slice(1)) sub.unsubscribe();
  });
});
