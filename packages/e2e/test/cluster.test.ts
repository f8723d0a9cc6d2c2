import type { Cursor } from '@trpc-longpoll/protocol';
import { createMemoryEventLog, type EventLog } from '@trpc-longpoll/server';
import { describe, expect, it } from 'vitest';
import { createRoomRouter, randomClientId, rawPoller, startServer, useCleanup, waitFor, type RoomTopics } from '../src';

/**
 * The `cluster` option (docs/protocol.md §5, "Several instances"), with two
 * handlers in one process sharing the memory log's channel: the instance a
 * client leaves stops its procedures when the client polls elsewhere or says
 * farewell there, and an untracked subscription moved off a live peer is told
 * `no-affinity`.
 */
const cleanup = useCleanup();

async function pair(log: EventLog<RoomTopics> = createMemoryEventLog<RoomTopics>()) {
  const servers = await Promise.all(['A', 'B'].map((name) => startServer({ router: createRoomRouter(log, name), holdMs: 300, cluster: log.cluster })));
  for (const server of servers) cleanup(() => server.close());
  const [a, b] = servers as [(typeof servers)[0], (typeof servers)[0]];
  return { log, a, b, rawA: rawPoller((req) => fetch(req), a.url), rawB: rawPoller((req) => fetch(req), b.url) };
}

const sub = (key: string, cursor?: Cursor) => ({ key, path: 'onRoom', input: { json: { room: 'r' } }, ...(cursor ? { cursor } : {}) });
const untracked = (key: string, cursor?: Cursor) => ({ key, path: 'onRoomUntracked', input: { json: { room: 'r' } }, ...(cursor ? { cursor } : {}) });

describe('instances that share a cluster channel', () => {
  it('a client that polls another instance has its runs stopped on the one it left, and each side counts it', async () => {
    const { a, b, rawA, rawB } = await pair();
    const client = randomClientId();
    const first = await rawA.poll(client, 1, [sub('s')], { minor: 1 });
    expect(a.longPoll.stats().runs.total).toBe(1);
    const cursor = { run: first.json.results.s.run, seq: 1, lastEventId: first.json.results.s.events[0].id };
    await rawB.poll(client, 2, [sub('s', cursor)], { minor: 1, prev: first.json.via });
    await waitFor(() => a.longPoll.stats().runs.total === 0);
    expect(a.longPoll.stats().sessions).toBe(0);
    expect(a.longPoll.stats().counters.moves).toEqual({ announced: 0, dropped: 1 });
    expect(b.longPoll.stats().counters.moves).toEqual({ announced: 1, dropped: 0 });
    expect(b.longPoll.stats().runs.total).toBe(1);
  });

  it('a poll that follows its predecessor on the same instance tells nobody', async () => {
    const { a, b, rawA } = await pair();
    const client = randomClientId();
    const first = await rawA.poll(client, 1, [sub('s')], { minor: 1 });
    const cursor = { run: first.json.results.s.run, seq: 1, lastEventId: first.json.results.s.events[0].id };
    await rawA.poll(client, 2, [sub('s', cursor)], { minor: 1, prev: first.json.via });
    expect(a.longPoll.stats().counters.moves.announced).toBe(0);
    expect(b.longPoll.stats().counters.moves.dropped).toBe(0);
  });

  it("a farewell on an instance that never saw the client stops the client's runs where they are", async () => {
    const { a, rawA, rawB } = await pair();
    const client = randomClientId();
    await rawA.poll(client, 1, [sub('s'), sub('t')], { minor: 1 });
    expect(a.longPoll.stats().runs.total).toBe(2);
    const farewell = await rawB.poll(client, 2, [], { minor: 1 });
    expect(farewell.status).toBe(200);
    await waitFor(() => a.longPoll.stats().runs.total === 0);
  });

  it('a notice about an older poll changes nothing, and garbage on the channel is ignored', async () => {
    const { log, a, rawA } = await pair();
    const client = randomClientId();
    await rawA.poll(client, 5, [sub('s')], { minor: 1 });
    const session = JSON.stringify([null, client]);
    for (const message of [
      JSON.stringify({ kind: 'trpc-longpoll/moved', session, poll: 4, from: 'elsewhere' }),
      JSON.stringify({ kind: 'trpc-longpoll/moved', session, poll: '9', from: 'elsewhere' }),
      JSON.stringify({ kind: 'trpc-longpoll/moved', session: 7, poll: 9, from: 'elsewhere' }),
      '{"kind":"trpc-longpoll/moved"',
      'x'.repeat(10_000),
      '[]',
      'null',
    ]) {
      log.cluster!.send(message);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(a.longPoll.stats().runs.total).toBe(1);
    expect(a.longPoll.stats().counters.moves.dropped).toBe(0);
    const next = await rawA.poll(client, 6, [sub('s')], { minor: 1 });
    expect(next.status).toBe(200);
  });

  it('an untracked subscription moved off a live peer ends with no-affinity; one whose instance is unknown (a restart) with resume-lost', async () => {
    const { log, a, rawA, rawB } = await pair();
    const client = randomClientId();
    const first = await rawA.poll(client, 1, [untracked('u')], { minor: 1 });
    await log.publish('room:r', { text: 'one', publisher: 't', via: 't' });
    const second = await rawA.poll(client, 2, [untracked('u', { run: first.json.results.u.run, seq: 0 })], { minor: 1, prev: first.json.via, hold: 2_000 });
    expect(second.json.results.u.events).toHaveLength(1);
    const cursor = { run: first.json.results.u.run, seq: 1 };

    const moved = await rawB.poll(client, 3, [untracked('u', cursor)], { minor: 1, prev: second.json.via });
    expect(moved.json.results.u.end).toMatchObject({ type: 'error', reason: 'no-affinity', error: { json: { message: expect.stringContaining('lp_affinity') } } });
    const restarted = await rawB.poll(randomClientId(), 1, [untracked('v', cursor)], { minor: 1, prev: 'an-instance-that-is-gone' });
    expect(restarted.json.results.v.end).toMatchObject({ type: 'error', reason: 'resume-lost' });
    // A client of revision 0 is never sent a reason it does not know.
    const old = await rawB.poll(randomClientId(), 1, [untracked('w', cursor)], { prev: second.json.via });
    expect(old.json.results.w.end).toMatchObject({ type: 'error', reason: 'resume-lost' });
    expect(a.longPoll.stats().counters.cursorErrors['no-affinity']).toBe(0);
  });
});
