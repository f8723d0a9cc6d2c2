import { createLongPollHandler } from '@trpc-longpoll/server';
import { describe, expect, it } from 'vitest';
import { createTestRouter, formatReport, rawPoller, REDIS_URL, redisAvailable, runSoak } from '../src';

const available = await redisAvailable('the chaos soak');

describe('chaos', () => {
  it('found by the soak: a client back on a run it left is not sent that run again from its start', async () => {
    // Two instances; the client's polls alternate between them, as behind a round-robin balancer.
    const fixture = createTestRouter();
    const [x, y] = [0, 1].map(() => rawPoller(createLongPollHandler({ router: fixture.router, createContext: () => ({ user: 'ann' }) }), 'http://i/'));
    const input = { json: { lastEventId: '0' } };
    const sub = (cursor?: { run: string; seq: number; lastEventId?: string }) => [{ key: 'k', path: 'post.onAdd', input, ...(cursor ? { cursor } : {}) }];
    const publish = (n: number) => {
      for (let i = 0; i < n; i++) fixture.feed.publish({ text: 'm', at: new Date() });
    };
    const ids = (answer: { json: any }) => (answer.json.results.k.events ?? []).map((e: { id: string }) => e.id);

    const first = await x!.poll('c', 1, sub());
    const runX = first.json.results.k.run as string;
    publish(4);
    // The other instance starts a run from the client's cursor {runX, 0}; it delivers 1–4.
    const started = await y!.poll('c', 2, sub({ run: runX, seq: 0 }));
    const runY = started.json.results.k.run as string;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const second = await y!.poll('c', 3, sub({ run: runY, seq: 0 }));
    expect(ids(second)).toEqual(['1', '2', '3', '4']);
    // Back on the first instance, whose run has 1–4 buffered too: it takes the client over from '4'.
    const third = await x!.poll('c', 4, sub({ run: runY, seq: 4, lastEventId: '4' }), { hold: 50 });
    expect(third.json.results.k.run).toBe(runX);
    expect(ids(third)).toEqual([]);
    publish(2);
    // The client's cursor is {runX, 0, '4'} again, as when the second run started, but with a lastEventId now.
    const fourth = await y!.poll('c', 5, sub({ run: runX, seq: 0, lastEventId: '4' }));
    expect(fourth.json.results.k.run).toBe(runY);
    expect(ids(fourth)).toEqual(['5', '6']);
  });

  it.skipIf(!available)(
    'a shortened soak: faults, a SIGKILL and a drain; tracked and "from now" clients get every event owed once, in order, and untracked ones behind affinity lose nothing silently',
    async () => {
      const report = await runSoak({
        redisUrl: REDIS_URL,
        clients: 3,
        fromNowClients: 2,
        untrackedClients: 2,
        subscriptionsPerClient: 3,
        topics: 4,
        events: 75,
        durationMs: 15_000,
        holdMs: 1_000,
        faultRate: 0.15,
        killAt: 0.35,
        drainAt: 0.7,
        restartAfterMs: 1_000,
        settleMs: 30_000,
      });
      const text = formatReport(report);
      console.log(text);
      expect(Object.values(report.faults).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
      for (const tally of report.tallies) {
        expect({ lost: tally.lost, duplicated: tally.duplicated, reordered: tally.reordered, errors: tally.errors }, text).toEqual({
          lost: 0,
          duplicated: 0,
          reordered: 0,
          errors: 0,
        });
        expect(tally.delivered, text).toBe(tally.published);
      }
      expect(report.ok).toBe(true);
    },
    90_000,
  );
});
