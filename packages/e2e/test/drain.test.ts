import { describe, expect, it } from 'vitest';
import { createLongPollClient, createTestRouter, recorder, startProxy, startServer, useCleanup, waitFor, type Recorder, type TestPost, type TestRouter } from '../src';

const cleanup = useCleanup();

interface Answer {
  sentAt: number;
  status: number;
  retryAfter: string | null;
}

/** Two instances sharing one event log, behind a round-robin proxy, and `count` clients following it. */
async function twoInstances(count: number, opts: { holdMs: number }) {
  const fixture = createTestRouter();
  const servers = await Promise.all(
    [0, 1].map(() => startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }), holdMs: opts.holdMs })),
  );
  for (const server of servers) cleanup(() => server.close());
  const proxy = await startProxy({ upstreams: servers.map((s) => s.url) });
  cleanup(() => proxy.close());
  const clients = Array.from({ length: count }, () => {
    const answers: Answer[] = [];
    const client = createLongPollClient<TestRouter>(proxy.url, {
      holdMs: opts.holdMs,
      retry: { initialDelayMs: 50, maxDelayMs: 500 },
      fetch: async (url, init) => {
        const sentAt = Date.now();
        const res = await fetch(url, init);
        answers.push({ sentAt, status: res.status, retryAfter: res.headers.get('retry-after') });
        return res;
      },
    });
    const rec = recorder<TestPost>();
    // An explicit starting point: a run lost before the first event could not otherwise say where "from now" was.
    const sub = client.post.onAdd.subscribe({ lastEventId: '0' }, rec.callbacks);
    cleanup(() => sub.unsubscribe());
    return { rec, answers };
  });
  await Promise.all(clients.map((c) => c.rec.untilStarted()));
  return { fixture, servers, proxy, clients };
}

const ids = (rec: Recorder<TestPost>) => rec.data().map((d) => Number(d.id));
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('drain', () => {
  it('close() answers every held poll at once with a jittered Retry-After; clients wait it out, move to the other instance and lose nothing', async () => {
    const holdMs = 10_000;
    const { fixture, servers, proxy, clients } = await twoInstances(6, { holdMs });
    const total = 60;
    for (let i = 1; i <= total / 2; i++) fixture.feed.publish({ text: `m${i}`, at: new Date() });
    await Promise.all(clients.map((c) => c.rec.untilData(total / 2)));
    // Wait until every client sits in a held poll again, some on each instance: a poll still on its way
    // when the balancer changes could reach the first instance after it closed, which is the other test's case.
    await waitFor(
      () => servers.every((s) => s.inFlight() > 0) && servers.reduce((n, s) => n + s.inFlight(), 0) === clients.length,
      5_000,
      'every client held, on both instances',
    );

    // The load balancer stops routing to the first instance, then the instance drains.
    proxy.setUpstreams([servers[1]!.url]);
    const closing = Date.now();
    await servers[0]!.longPoll.close();
    // Holds were 10 s; close() did not wait for them.
    expect(Date.now() - closing).toBeLessThan(holdMs / 2);

    for (let i = total / 2 + 1; i <= total; i++) fixture.feed.publish({ text: `m${i}`, at: new Date() });
    await Promise.all(clients.map((c) => c.rec.untilData(total, { ms: 10_000 })));
    await new Promise((resolve) => setTimeout(resolve, 100));

    const drained = clients.flatMap((c) => c.answers.filter((a) => a.status === 200 && a.retryAfter !== null));
    expect(drained.length).toBeGreaterThan(0);
    for (const answer of drained) expect(['0', '1', '2']).toContain(answer.retryAfter);
    for (const { rec, answers } of clients) {
      // Every event exactly once, in order, across the move.
      expect(ids(rec)).toEqual(range(total));
      // A drain is no failure: no subscription went back to `connecting`.
      expect(rec.interruptions()).toEqual([]);
      expect(answers.every((a) => a.status === 200)).toBe(true);
      // The client honoured the pause before its next poll.
      const index = answers.findIndex((a) => a.retryAfter !== null);
      if (index >= 0 && answers[index + 1]) {
        const pauseMs = Number(answers[index]!.retryAfter) * 1000;
        expect(answers[index + 1]!.sentAt - answers[index]!.sentAt).toBeGreaterThanOrEqual(pauseMs - 50);
      }
    }
  });

  it('with the proxy still sending polls to the closed instance for a while, clients back off through its 503s and still lose nothing', async () => {
    const { fixture, servers, proxy, clients } = await twoInstances(4, { holdMs: 2_000 });
    const total = 40;
    for (let i = 1; i <= total / 2; i++) fixture.feed.publish({ text: `m${i}`, at: new Date() });
    await Promise.all(clients.map((c) => c.rec.untilData(total / 2)));
    await servers[0]!.longPoll.close();
    // A balancer's health check notices after a while. (Until then strict round-robin can keep sending
    // one client's every poll to the closed instance, whenever the others' polls fall in step.)
    const noticed = setTimeout(() => proxy.setUpstreams([servers[1]!.url]), 1_500);
    cleanup(() => clearTimeout(noticed));
    for (let i = total / 2 + 1; i <= total; i++) fixture.feed.publish({ text: `m${i}`, at: new Date() });
    await Promise.all(clients.map((c) => c.rec.untilData(total, { ms: 15_000 })));
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const { rec } of clients) expect(ids(rec)).toEqual(range(total));
    const refusals = clients.flatMap((c) => c.answers.filter((a) => a.status === 503));
    for (const refusal of refusals) expect(Number(refusal.retryAfter)).toBeGreaterThanOrEqual(1);
  }, 30_000);
});
