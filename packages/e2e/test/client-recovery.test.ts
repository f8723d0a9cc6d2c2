import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { TRPCClientError } from '@trpc/client';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, type PollRequest, type PollResponse } from '@trpc-longpoll/protocol';
import { createLongPollNodeHandler } from '@trpc-longpoll/server';
import {
  createLocks,
  createLongPollClient,
  createTestRouter,
  listen,
  recorder,
  useCleanup,
  useUnhandledRejections,
  waitFor,
  type Recorder,
  type TestPost,
  type TestRouter,
} from '../src';

/**
 * The link recovering from a server under pressure and from a client id that
 * someone else took over. The real long-poll handler serves the polls; a thin
 * `node:http` front answers some of them itself, the way a server with
 * capacity budgets and stale-poll answers does, so these tests need nothing
 * from the server beyond what it already has.
 */
const cleanup = useCleanup();
const unhandled = useUnhandledRejections();
const HOLD_MS = 1_000;

interface Seen {
  at: number;
  body: PollRequest;
}

/**
 * The real handler behind a front that records every poll, lets `intercept`
 * answer a poll instead of the handler, and marks the handler's answer to a
 * stale poll (number not above the highest seen for the client id) `stale`,
 * as the server itself does once it answers stale polls with `stale: true` (the front
 * then leaves its answer alone).
 */
async function startFront(intercept?: (poll: PollRequest) => PollResponse | undefined) {
  const fixture = createTestRouter();
  const longPoll = createLongPollNodeHandler({ router: fixture.router, createContext: () => ({ user: 'ann' }), holdMs: HOLD_MS });
  const polls: Seen[] = [];
  const highest = new Map<string, number>();

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let text = '';
    for await (const chunk of req) text += String(chunk);
    const poll = JSON.parse(text) as PollRequest;
    polls.push({ at: Date.now(), body: poll });
    const own = intercept?.(poll);
    if (own) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(own));
      return;
    }
    const stale = poll.poll <= (highest.get(poll.client) ?? -1);
    // The handler's own bookkeeping: a farewell ends the session, so its numbering starts over.
    if (!stale && poll.subscriptions.length === 0) highest.delete(poll.client);
    else if (!stale) highest.set(poll.client, poll.poll);
    if (stale) markStale(res);
    // The body is read already; the handler takes it from `req.body`, as behind a body parser.
    longPoll(Object.assign(req, { body: text }), res);
  }

  const server = createServer((req, res) => {
    serve(req, res).catch(() => res.destroy());
  });
  const listening = await listen(server);
  cleanup(async () => {
    await longPoll.close();
    await listening.close();
  });
  return { fixture, url: listening.url, polls };
}

/** Adds `stale: true` to the handler's (empty) answer, unless the handler says so already. */
function markStale(res: ServerResponse): void {
  const end = res.end.bind(res) as (body?: unknown) => ServerResponse;
  res.end = ((body?: unknown) => {
    const answer = typeof body === 'string' && res.statusCode === 200 ? (JSON.parse(body) as PollResponse) : undefined;
    return end(answer && !answer.stale ? JSON.stringify({ ...answer, stale: true }) : body);
  }) as typeof res.end;
}

type Pressure = 'TOO_MANY_REQUESTS' | 'SERVICE_UNAVAILABLE';

/** The end a server with budgets gives a subscription it has no room to start. */
function refusal(key: string, code: Pressure, retryAfterMs?: number): PollResponse {
  const error = superjson.serialize({
    message: 'No capacity for this subscription now',
    code: code === 'TOO_MANY_REQUESTS' ? -32029 : -32603,
    data: { code, httpStatus: code === 'TOO_MANY_REQUESTS' ? 429 : 503, path: 'post.onAdd', reason: null },
  });
  return {
    v: PROTOCOL_VERSION,
    results: { [key]: { end: { type: 'error', error, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) } } },
  };
}

/** Records like `recorder`, and keeps the errors of `connecting` states. */
function watched() {
  const rec = recorder<{ id: string }>();
  const connectingErrors: TRPCClientError<TestRouter>[] = [];
  const callbacks = {
    ...rec.callbacks,
    onConnectionStateChange: (state: { state: string; error: unknown }) => {
      if (state.error) connectingErrors.push(state.error as TRPCClientError<TestRouter>);
      rec.callbacks.onConnectionStateChange(state);
    },
  };
  return { rec, callbacks, connectingErrors };
}

const ids = (rec: Recorder<{ id: string }>) => rec.data().map((d) => d.id);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String(from + i));
const carrying = (path: string) => (seen: Seen) => seen.body.subscriptions.find((sub) => sub.path === path);

describe('pressure: a subscription refused for lack of capacity is retried', () => {
  it.each<Pressure>(['TOO_MANY_REQUESTS', 'SERVICE_UNAVAILABLE'])(
    'refused twice with %s and retryAfterMs 300: connecting, then started and every event, never sooner than asked',
    async (code) => {
      const refusals: number[] = [];
      const { fixture, url, polls } = await startFront((poll) => {
        const sub = poll.subscriptions.find((s) => s.path === 'post.onAdd');
        if (!sub || refusals.length >= 2) return undefined;
        refusals.push(Date.now());
        return refusal(sub.key, code, 300);
      });
      // Jitter far below retryAfterMs: any wait of 300 ms comes from the server's hint.
      const client = createLongPollClient<TestRouter>(url, { holdMs: HOLD_MS, retry: { initialDelayMs: 10, maxDelayMs: 50 } });
      const { rec, callbacks, connectingErrors } = watched();
      const sub = client.post.onAdd.subscribe(undefined, callbacks);
      cleanup(() => sub.unsubscribe());

      await rec.untilStarted({ ms: 5_000 });
      expect(rec.story()).toEqual(['connecting', 'connecting', 'connecting', 'started', 'pending']);
      expect(connectingErrors).toHaveLength(2);
      for (const error of connectingErrors) {
        expect(error.message).toBe('No capacity for this subscription now');
        expect(error.data?.code).toBe(code);
      }
      const sent = polls.filter(carrying('post.onAdd'));
      expect(sent).toHaveLength(3);
      for (let i = 1; i < sent.length; i++) {
        expect(sent[i]!.at - sent[i - 1]!.at).toBeGreaterThanOrEqual(295);
        // Refused before any run, it has no cursor: it goes again as a new subscription.
        expect(carrying('post.onAdd')(sent[i]!)?.cursor).toBeUndefined();
      }

      for (let i = 1; i <= 5; i++) fixture.feed.publish({ text: `m${i}`, at: new Date(i) });
      await rec.untilData(5);
      expect(ids(rec)).toEqual(range(1, 5));
      expect(rec.errors()).toEqual([]);
      expect(unhandled).toEqual([]);
    },
  );

  it('a refused restart keeps its cursor: the new run resumes after the last event', async () => {
    let refused = 0;
    const { url, polls } = await startFront((poll) => {
      const sub = poll.subscriptions.find((s) => s.path === 'flaky' && s.cursor?.restart);
      if (!sub || refused++ > 0) return undefined;
      return refusal(sub.key, 'TOO_MANY_REQUESTS', 300);
    });
    const client = createLongPollClient<TestRouter>(url, { holdMs: HOLD_MS, retry: { initialDelayMs: 10, maxDelayMs: 50 } });
    const { rec, callbacks } = watched();
    const sub = client.flaky.subscribe(undefined, callbacks);
    cleanup(() => sub.unsubscribe());

    // Run 1 yields '1' and fails (retryable); its restart is refused once; run 2 yields '2'.
    await rec.untilData(2, { ms: 5_000 });
    expect(ids(rec)).toEqual(['1', '2']);
    const restarts = polls.filter((seen) => carrying('flaky')(seen)?.cursor?.restart);
    expect(restarts).toHaveLength(2);
    expect(carrying('flaky')(restarts[1]!)?.cursor).toMatchObject({ lastEventId: '1', restart: true });
    expect(restarts[1]!.at - restarts[0]!.at).toBeGreaterThanOrEqual(295);
    expect(rec.story()).toEqual(['connecting', 'started', 'pending', 'data', 'connecting', 'connecting', 'started', 'pending', 'data']);
    expect(rec.errors()).toEqual([]);
  });

  it('TOO_MANY_REQUESTS without retryAfterMs is still fatal', async () => {
    const { url, polls } = await startFront((poll) => {
      const sub = poll.subscriptions.find((s) => s.path === 'post.onAdd');
      return sub ? refusal(sub.key, 'TOO_MANY_REQUESTS') : undefined;
    });
    const client = createLongPollClient<TestRouter>(url, { holdMs: HOLD_MS, retry: { initialDelayMs: 10, maxDelayMs: 50 } });
    const rec = recorder();
    const sub = client.post.onAdd.subscribe(undefined, rec.callbacks);
    cleanup(() => sub.unsubscribe());

    const error = await rec.firstError();
    expect(error.data?.code).toBe('TOO_MANY_REQUESTS');
    expect(rec.story()).toEqual(['connecting', 'error']);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(polls.filter(carrying('post.onAdd'))).toHaveLength(1);
  });
});

/** A poll with the victim's client id and the highest safe number: every later poll of the victim is stale. */
async function hijack(url: string, client: string): Promise<void> {
  // It must carry a subscription: an empty poll is a farewell, which would end the session instead.
  const body = { v: PROTOCOL_VERSION, client, poll: Number.MAX_SAFE_INTEGER, hold: 0, subscriptions: [{ key: 'x', path: 'hello' }] };
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await res.text();
}

describe('stale-poll lockout: a client id taken over by someone else', () => {
  it('the link moves to a fresh client id within a second or so, losing and repeating nothing', async () => {
    const { fixture, url, polls } = await startFront();
    // Default retry options: recovery must be quick without tuning.
    const client = createLongPollClient<TestRouter>(url, { holdMs: HOLD_MS });
    const { rec, callbacks, connectingErrors } = watched();
    const sub = client.post.onAdd.subscribe(undefined, callbacks);
    cleanup(() => sub.unsubscribe());
    await rec.untilStarted();
    for (let i = 1; i <= 5; i++) fixture.feed.publish({ text: `m${i}`, at: new Date(i) });
    await rec.untilData(5);

    const victim = polls.at(-1)!.body.client;
    const attackedAt = Date.now();
    await hijack(url, victim);
    const lockedFrom = polls.length;
    for (let i = 6; i <= 10; i++) fixture.feed.publish({ text: `m${i}`, at: new Date(i) });
    await waitFor(() => polls.slice(lockedFrom).some((seen) => seen.body.client !== victim), 5_000, 'a poll under a new client id');
    const switchedAt = polls.find((seen, i) => i >= lockedFrom && seen.body.client !== victim)!.at;
    for (let i = 11; i <= 15; i++) fixture.feed.publish({ text: `m${i}`, at: new Date(i) });
    await rec.untilData(15, { ms: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 100));

    expect(switchedAt - attackedAt).toBeLessThan(5_000);
    const locked = polls.slice(lockedFrom).filter((seen) => seen.body.client === victim);
    // A few paced polls, not the hundreds a second of answering every stale answer at once.
    expect(locked.length).toBeGreaterThanOrEqual(3);
    expect(locked.length).toBeLessThan(30);
    const fresh = polls.slice(lockedFrom).filter((seen) => seen.body.client !== victim);
    expect(new Set(fresh.map((seen) => seen.body.client)).size).toBe(1);
    // Numbers go on from where they were; the new id's session resumes from the cursor.
    expect(fresh[0]!.body.poll).toBeGreaterThan(locked.at(-1)!.body.poll);
    expect(fresh[0]!.body.subscriptions[0]!.cursor?.lastEventId).toBeDefined();

    expect(ids(rec)).toEqual(range(1, 15));
    expect(connectingErrors.length).toBeGreaterThanOrEqual(1);
    expect(connectingErrors[0]!.message).toMatch(/stale/);
    // The first stale answer is taken for a race and shows nothing; later ones show `connecting`, the new id `started`.
    const told = rec.story();
    const fifth = told.findIndex((_, i) => told.slice(0, i + 1).filter((s) => s === 'data').length === 5);
    const recovery = told.slice(fifth + 1, told.indexOf('data', fifth + 1));
    expect(recovery.slice(-2)).toEqual(['started', 'pending']);
    expect(recovery.slice(0, -2).length).toBeGreaterThanOrEqual(1);
    expect(recovery.slice(0, -2).every((s) => s === 'connecting')).toBe(true);
    expect(rec.errors()).toEqual([]);
    expect(unhandled).toEqual([]);
  });
});

describe('stale-poll lockout with shareAcrossTabs', () => {
  it('the leader moves every tab to the new id, and the next leader keeps using it', async () => {
    const { fixture, url, polls } = await startFront();
    const locks = createLocks();
    const name = `recovery-${Math.random().toString(36).slice(2)}`;
    const sent: Array<{ tab: number; body: PollRequest }> = [];
    const openTab = (tab: number) => {
      const closing = new AbortController();
      cleanup(() => closing.abort());
      const client = createLongPollClient<TestRouter>(url, {
        holdMs: HOLD_MS,
        shareAcrossTabs: { name, locks, closeSignal: closing.signal } as never,
        fetch: (target, init) => {
          sent.push({ tab, body: JSON.parse(String(init.body)) as PollRequest });
          return fetch(target, init);
        },
      });
      const rec = recorder<TestPost>();
      const sub = client.post.onAdd.subscribe(undefined, rec.callbacks);
      cleanup(() => sub.unsubscribe());
      return { rec, close: () => closing.abort() };
    };
    const tabs = [openTab(0), openTab(1)];
    for (const { rec } of tabs) await rec.untilStarted();
    await waitFor(() => sent.at(-1)?.body.subscriptions.length === 2, 5_000, 'a poll carrying both tabs');
    const leader = sent.at(-1)!.tab;
    const follower = 1 - leader;
    fixture.feed.publish({ text: 'm1', at: new Date(1) });
    for (const { rec } of tabs) await rec.untilData(1);

    const victim = polls.at(-1)!.body.client;
    await hijack(url, victim);
    const lockedFrom = polls.length;
    fixture.feed.publish({ text: 'm2', at: new Date(2) });
    await waitFor(() => polls.slice(lockedFrom).some((seen) => seen.body.client !== victim), 5_000, 'a poll under a new client id');
    const fresh = polls.slice(lockedFrom).find((seen) => seen.body.client !== victim)!.body.client;
    for (const { rec } of tabs) await rec.untilData(2);

    const handoverFrom = sent.length;
    tabs[leader]!.close();
    fixture.feed.publish({ text: 'm3', at: new Date(3) });
    await tabs[follower]!.rec.untilData(3);

    const next = sent.slice(handoverFrom).filter((p) => p.tab === follower);
    expect(next.length).toBeGreaterThan(0);
    // It continues the leader's new session: had it kept the hijacked id, every poll of it would be stale.
    expect(new Set(next.map((p) => p.body.client))).toEqual(new Set([fresh]));
    expect(ids(tabs[follower]!.rec)).toEqual(['1', '2', '3']);
    expect(ids(tabs[leader]!.rec)).toEqual(['1', '2']);
    for (const { rec } of tabs) expect(rec.errors()).toEqual([]);
    expect(unhandled).toEqual([]);
  });
});
