/*
 * A scripted morning of one server, driven with hand-written polls (docs/protocol.md)
 * so that every counter ends at a known value: two subscriptions, three events, an
 * unsubscribe, a flood of new clients refused for want of sessions, a lost run, and
 * a drain. The server must be started with `maxSessions: 1` and `coalesceMs` of
 * a few tens of ms (a burst of events then travels in one answer).
 */
import type { ObservedServer } from './server';

interface Cursor {
  run: string;
  seq: number;
}
interface Subscription {
  key: string;
  path: string;
  input?: unknown;
  cursor?: Cursor;
}
interface Answer {
  status: number;
  results: Record<string, { run?: string; events?: { seq: number }[]; end?: { type: string; reason?: string } }>;
}

async function poll(url: string, client: string, n: number, subscriptions: Subscription[], hold = 0): Promise<Answer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ v: 1, client, poll: n, hold, subscriptions }),
  });
  const json = (await response.json()) as { results?: Answer['results'] };
  return { status: response.status, results: json.results ?? {} };
}

async function emit(url: string, room: string, count: number): Promise<void> {
  const response = await fetch(`${url}/emit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ room, count }) });
  if (!response.ok) throw new Error(`emit answered ${response.status}`);
}

function expectThat(condition: boolean, what: string): void {
  if (!condition) throw new Error(`scenario: expected ${what}`);
}

const lobby = { path: 'ticks', input: { room: 'lobby' } };
const news = { path: 'ticks', input: { room: 'news' } };

/** Runs the scenario; the counters it leaves are `SCENARIO_COUNTERS`. Ends with the handler drained. */
export async function runScenario(server: Pick<ObservedServer, 'url' | 'stats' | 'drain'>): Promise<void> {
  const { url } = server;
  // Subscribe: both runs start, and the answer says so at once.
  const first = await poll(url, 'alice', 1, [{ key: 'a', ...lobby }, { key: 'b', ...news }]);
  const a = { run: first.results.a!.run!, seq: 0 };
  const b = { run: first.results.b!.run!, seq: 0 };

  // Events: three ticks in the lobby travel in one answer.
  const held = poll(url, 'alice', 2, [{ key: 'a', ...lobby, cursor: a }, { key: 'b', ...news, cursor: b }], 5_000);
  await waitFor(() => server.stats().heldPolls === 1, 'alice held');
  await emit(url, 'lobby', 3);
  const events = (await held).results.a?.events ?? [];
  expectThat(events.length === 3, `3 events in one answer, got ${events.length}`);

  // Unsubscribe: the poll leaves `b` out, so its run stops; nothing new, so its zero hold expires.
  await poll(url, 'alice', 3, [{ key: 'a', ...lobby, cursor: { run: a.run, seq: 3 } }]);

  // A flood of new clients while alice holds the only session: each is refused with 503.
  const flood = await Promise.all([1, 2, 3, 4, 5].map((i) => poll(url, `flood-${i}`, 1, [{ key: 'a', ...lobby }])));
  expectThat(flood.every((answer) => answer.status === 503), 'every flood poll refused with 503');

  // Alice leaves (a farewell, counted nowhere); bob comes back with a cursor naming a run this server never had.
  await poll(url, 'alice', 4, []);
  const lost = await poll(url, 'bob', 1, [{ key: 'a', ...lobby, cursor: { run: 'a-run-lost-in-a-restart', seq: 7 } }]);
  expectThat(lost.results.a?.end?.type === 'error', 'the lost run ends with an error');

  // Bob starts over, is held, and the handler drains under him.
  const again = await poll(url, 'bob', 2, [{ key: 'a', ...lobby }]);
  const drained = poll(url, 'bob', 3, [{ key: 'a', ...lobby, cursor: { run: again.results.a!.run!, seq: 0 } }], 5_000);
  await waitFor(() => server.stats().heldPolls === 1, 'bob held');
  await server.drain();
  expectThat((await drained).status === 200, 'the drained poll answered 200');
}

/** What `stats().counters` holds after `runScenario`. */
export const SCENARIO_COUNTERS = {
  polls: { news: 4, holdExpired: 1, released: 0, drain: 1, stale: 0 },
  refusals: { sessions: { status: 503, count: 5 } },
  runs: { started: 3, resumed: 0, adopted: 0 },
  cursorErrors: { 'resume-lost': 1, gone: 0, reset: 0, 'no-affinity': 0 },
  eventsDelivered: 3,
  moves: { announced: 0, dropped: 0 },
};

async function waitFor(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`scenario: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
