import { describe, expect, it } from 'vitest';
import type { PollRequest } from '@trpc-longpoll/protocol';
import { createLongPollClient, createTestRouter, recorder, startServer, useCleanup, waitFor, type TestRouter } from '../src';

/** However many subscriptions a client has, it holds one request. */
const cleanup = useCleanup();

async function setUp() {
  const fixture = createTestRouter();
  const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }), holdMs: 2_000 });
  cleanup(() => server.close());
  const polls: PollRequest[] = [];
  const client = createLongPollClient<TestRouter>(server.url, {
    holdMs: 2_000,
    fetch: (url, init) => {
      polls.push(JSON.parse(String(init.body)) as PollRequest);
      return fetch(url, init);
    },
  });
  return { fixture, server, client, polls };
}

function subscribeRooms(client: ReturnType<typeof createLongPollClient<TestRouter>>, rooms: string[]) {
  return rooms.map((room) => {
    const rec = recorder();
    const sub = client.ticks.subscribe({ room }, rec.callbacks);
    cleanup(() => sub.unsubscribe());
    return rec;
  });
}

const rooms = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('one held request per client', () => {
  it('20 subscriptions share one held request', async () => {
    const { fixture, server, client } = await setUp();
    const recs = subscribeRooms(client, rooms('r', 20));
    for (const rec of recs) await rec.untilStarted();
    await waitFor(() => server.inFlight() === 1, 5_000, 'one held poll');
    // Sample across more than one hold: never a second request in flight.
    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(server.inFlight()), 20);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    clearInterval(sampler);
    expect(Math.max(...samples)).toBe(1);
    // undici may open the next poll's socket before it has pooled the previous one, so one idle keep-alive
    // socket can sit beside the held one; the held request is what counts against a browser's per-origin limit.
    expect(server.openSockets()).toBeLessThanOrEqual(2);

    // And every one of them is live through it.
    for (const [i, room] of rooms('r', 20).entries()) fixture.ticker.emit(room, i);
    for (const [i, rec] of recs.entries()) await rec.until(() => rec.data().length === 1 && rec.data()[0] === i);
    await waitFor(() => server.inFlight() === 1, 5_000, 'the poll to be held again');
    expect(server.openSockets()).toBeLessThanOrEqual(2);
  });

  it('50 subscriptions made in one tick cost one re-poll', async () => {
    const { client, polls } = await setUp();
    const first = subscribeRooms(client, ['first']);
    await first[0]!.untilStarted();
    const before = polls.length;

    const recs = subscribeRooms(client, rooms('burst', 50));
    for (const rec of recs) await rec.untilStarted();
    const after = polls.slice(before);
    // Exactly one poll introduced new subscriptions (no cursor yet), and it carried all 50.
    const introducing = after.filter((poll) => poll.subscriptions.some((sub) => !sub.cursor));
    expect(introducing).toHaveLength(1);
    expect(introducing[0]!.subscriptions.filter((sub) => !sub.cursor)).toHaveLength(50);
    expect(introducing[0]!.subscriptions).toHaveLength(51);
    expect(after[0]).toBe(introducing[0]);
  });
});
