import type { IncomingMessage } from 'node:http';
import { TRPCError, initTRPC } from '@trpc/server';
import { createLongPollHandler } from '@trpc-longpoll/server';
import superjson from 'superjson';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  containsStack,
  createFeed,
  createLongPollClient,
  randomClientId,
  rawPoller,
  recorder,
  startServer,
  useCleanup,
  useUnhandledRejections,
  waitFor,
} from '../src';

const cleanup = useCleanup();

const unhandled = useUnhandledRejections();
afterAll(() => {
  expect(unhandled).toEqual([]);
});

/** Each user has a private inbox; a token names the user. */
function inboxApp(isDev = false) {
  const t = initTRPC.context<{ user: string }>().create({ transformer: superjson, isDev });
  const inboxes = new Map<string, ReturnType<typeof createFeed<string>>>();
  const inbox = (user: string) => {
    if (!inboxes.has(user)) inboxes.set(user, createFeed<string>());
    return inboxes.get(user)!;
  };
  const started: string[] = [];
  const ended: string[] = [];
  const router = t.router({
    inbox: t.procedure.input(z.object({ lastEventId: z.string().nullish() }).optional()).subscription(async function* ({ ctx, input, signal }) {
      started.push(ctx.user);
      try {
        yield* inbox(ctx.user).subscribe(input?.lastEventId, signal);
      } finally {
        ended.push(ctx.user);
      }
    }),
    boom: t.procedure.subscription(async function* () {
      throw new Error('connection to 10.0.0.7 refused');
      yield '';
    }),
    q: t.procedure.query(() => {
      throw new Error('connection to 10.0.0.7 refused');
    }),
  });
  const tokens = new Map([
    ['token-alice', 'alice'],
    ['token-bob', 'bob'],
  ]);
  const createContext = ({ req }: { req: IncomingMessage }) => {
    const user = tokens.get(String(req.headers.authorization ?? ''));
    if (!user) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Sign in first' });
    return { user };
  };
  return { router, inbox, started, ended, tokens, createContext };
}

interface SentPoll {
  url: string;
  at: number;
  body: any;
  status?: number;
  answeredAt?: number;
}

/** A long-poll client for `token` that records every poll it sends. */
function clientFor(url: string, token: string, holdMs: number) {
  const sent: SentPoll[] = [];
  const client = createLongPollClient<ReturnType<typeof inboxApp>['router']>(url, {
    holdMs,
    headers: { authorization: token },
    retry: { initialDelayMs: 10, maxDelayMs: 50 },
    fetch: async (input, init) => {
      const entry: SentPoll = { url: input, at: Date.now(), body: JSON.parse(String(init.body)) };
      sent.push(entry);
      const res = await fetch(input, init);
      entry.status = res.status;
      entry.answeredAt = Date.now();
      return res;
    },
  });
  return { client, sent };
}

describe('security: identity binding', () => {
  it('another identity replaying a client id, keys and run references reads nothing and cancels nothing', async () => {
    const app = inboxApp();
    const server = await startServer({
      router: app.router,
      createContext: app.createContext as never,
      identify: ({ ctx }: { ctx: { user: string } }) => ctx.user,
      holdMs: 1_000,
    });
    cleanup(() => server.close());
    const alice = clientFor(server.url, 'token-alice', 1_000);
    const rec = recorder();
    const sub = alice.client.inbox.subscribe(undefined, rec.callbacks);
    cleanup(() => sub.unsubscribe());
    await rec.untilStarted();
    app.inbox('alice').publish('secret-1');
    app.inbox('alice').publish('secret-2');
    await rec.untilData(2);
    // Alice's latest poll carries her client id, key, run reference and last event id.
    await waitFor(() => alice.sent.at(-1)!.body.subscriptions[0]?.cursor?.seq === 2, 5_000, "alice's acknowledging poll");
    const stolen = alice.sent.at(-1)!.body;
    const aliceRun = stolen.subscriptions[0].cursor.run as string;

    const bob = rawPoller((req) => fetch(req), server.url, { headers: { authorization: 'token-bob' } });
    // 1. A replay with a far-ahead poll number: without binding, it would also make every later poll of Alice's stale.
    const replay = await bob.send({ ...stolen, poll: 1e12, hold: 0 });
    expect(replay.status).toBe(200);
    expect(replay.text).not.toContain('secret');
    const replayed = replay.json.results[stolen.subscriptions[0].key];
    expect(replayed?.run).toBeDefined();
    expect(replayed.run).not.toBe(aliceRun);
    // 2. Her key with her run reference but no last event id: for Bob there is no such run.
    const hijack = await bob.send({ ...stolen, poll: 1e12 + 1, hold: 0, subscriptions: [{ key: stolen.subscriptions[0].key, path: 'inbox', cursor: { run: aliceRun, seq: 1 } }] });
    expect(hijack.text).not.toContain('secret');
    expect(hijack.json.results[stolen.subscriptions[0].key].end).toMatchObject({ type: 'error', reason: 'resume-lost' });
    // 3. A farewell in her name.
    const farewell = await bob.send({ ...stolen, poll: 1e12 + 2, subscriptions: [] });
    expect(farewell.json).toEqual({ v: 1, results: {}, via: expect.any(String) });

    // Alice's run was neither read, cancelled nor replaced: it goes on delivering, in order, once.
    app.inbox('alice').publish('secret-3');
    app.inbox('alice').publish('secret-4');
    await rec.untilData(4);
    expect(rec.data()).toEqual(['1', '2', '3', '4'].map((id) => ({ id, data: `secret-${id}` })));
    expect(rec.errors()).toEqual([]);
    expect(app.started.filter((user) => user === 'alice')).toHaveLength(1);
    expect(app.ended.filter((user) => user === 'alice')).toHaveLength(0);
    // Bob's polls ran the procedure as Bob, under his own context.
    expect(app.started.filter((user) => user === 'bob').length).toBeGreaterThan(0);
  });

  it('nothing secret travels in the URL: polls go to the bare endpoint, credentials in headers, state in the body', async () => {
    const app = inboxApp();
    const server = await startServer({ router: app.router, createContext: app.createContext as never, holdMs: 500 });
    cleanup(() => server.close());
    const alice = clientFor(server.url, 'token-alice', 500);
    const rec = recorder();
    const sub = alice.client.inbox.subscribe(undefined, rec.callbacks);
    cleanup(() => sub.unsubscribe());
    await rec.untilStarted();
    app.inbox('alice').publish('x');
    await rec.untilData(1);
    await waitFor(() => alice.sent.length >= 2);
    for (const poll of alice.sent) {
      const url = new URL(poll.url);
      expect(url.origin + url.pathname.replace(/\/$/, '')).toBe(server.url);
      // Only the affinity token, for balancers to hash on: 48 bits, not the client id (docs/scaling.md, "Affinity").
      expect([...url.searchParams.keys()]).toEqual(['lp_affinity']);
      expect(url.searchParams.get('lp_affinity')).toMatch(/^[0-9a-f]{12}$/);
      expect(poll.url).not.toContain(poll.body.client);
    }
    expect(alice.sent.at(-1)!.body.subscriptions[0].cursor.run).toEqual(expect.any(String));
  });
});

describe('security: revocation', () => {
  it('revoking a credential stops delivery within one hold: every poll after it is refused and the subscription fails UNAUTHORIZED', async () => {
    const holdMs = 400;
    const app = inboxApp();
    const server = await startServer({ router: app.router, createContext: app.createContext as never, holdMs });
    cleanup(() => server.close());
    const alice = clientFor(server.url, 'token-alice', holdMs);
    const rec = recorder<{ id: string; data: string }>();
    alice.client.inbox.subscribe(undefined, rec.callbacks);
    await rec.untilStarted();
    app.inbox('alice').publish('before');
    await rec.untilData(1);

    app.tokens.delete('token-alice');
    const revokedAt = Date.now();
    // An event in the poll already held (authorized when it began) may still arrive; nothing after it.
    app.inbox('alice').publish('during');
    const error = await rec.firstError({ ms: 5_000 });
    const stoppedAfter = Date.now() - revokedAt;
    app.inbox('alice').publish('after');

    expect(error.data).toMatchObject({ code: 'UNAUTHORIZED', httpStatus: 401 });
    // One hold, its jitter (1/16) and a generous allowance for a loaded machine.
    expect(stoppedAfter).toBeLessThan(holdMs + holdMs / 16 + 2_000);
    // Polls begun after the revocation were all refused; at most the one already held answered 200 after it.
    for (const poll of alice.sent.filter((p) => p.at > revokedAt)) expect(poll.status).toBe(401);
    expect(alice.sent.filter((p) => p.status === 200 && p.answeredAt! > revokedAt).length).toBeLessThanOrEqual(1);
    expect(alice.sent.some((p) => p.status === 401)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(rec.data().map((d) => d.data)).not.toContain('after');
    // The refused client's run is stopped at idle expiry at the latest; it can no longer be read.
  });
});

describe('security: errors carry no stacks or internals', () => {
  it('in production (isDev: false) neither poll-wide nor per-subscription errors carry a stack, as with tRPC', async () => {
    const app = inboxApp(false);
    const server = await startServer({ router: app.router, createContext: app.createContext as never });
    cleanup(() => server.close());
    const anonymous = rawPoller((req) => fetch(req), server.url);
    const refused = await anonymous.poll(randomClientId(), 1, [{ key: 'a', path: 'inbox' }]);
    expect(refused.status).toBe(401);
    expect(containsStack(refused.text)).toBe(false);

    const authed = rawPoller((req) => fetch(req), server.url, { headers: { authorization: 'token-alice' } });
    const failed = await authed.poll(randomClientId(), 1, [{ key: 'b', path: 'boom' }]);
    expect(failed.status).toBe(200);
    expect(failed.json.results.b.end.type).toBe('error');
    expect(containsStack(failed.text)).toBe(false);

    // tRPC's own answer for the same failure has no stack either.
    const trpc = await fetch(`${server.url}/q`, { headers: { authorization: 'token-alice' } });
    expect(containsStack(await trpc.text())).toBe(false);
  });

  it('in development (isDev: true) a stack is included exactly as tRPC includes it', async () => {
    const app = inboxApp(true);
    const server = await startServer({ router: app.router, createContext: app.createContext as never });
    cleanup(() => server.close());
    const authed = rawPoller((req) => fetch(req), server.url, { headers: { authorization: 'token-alice' } });
    const failed = await authed.poll(randomClientId(), 1, [{ key: 'b', path: 'boom' }]);
    const shape = superjson.deserialize<{ data: { stack?: string } }>(failed.json.results.b.end.error);
    expect(shape.data.stack).toMatch(/connection to 10\.0\.0\.7 refused/);
    const trpc = (await (await fetch(`${server.url}/q`, { headers: { authorization: 'token-alice' } })).json()) as any;
    expect(superjson.deserialize<{ data: { stack?: string } }>(trpc.error).data.stack).toEqual(expect.any(String));
  });

  it('a bug inside the handler (here: a throwing errorFormatter) answers a bare 500 in both adapters and the server keeps serving', async () => {
    const t = initTRPC.create({
      isDev: true,
      errorFormatter: ({ shape, error }) => {
        if (error.message === 'explode') throw new Error('formatter bug at /srv/app/format.ts:3');
        return shape;
      },
    });
    const router = t.router({ ok: t.procedure.subscription(async function* () {
      yield 1;
    }) });
    const reported: unknown[] = [];
    const createContext = ({ info }: { info: { connectionParams: Record<string, string> | null } }) => {
      if (info.connectionParams?.mode === 'explode') throw new TRPCError({ code: 'UNAUTHORIZED', message: 'explode' });
      return {};
    };
    const onError = ({ error }: { error: TRPCError }) => {
      reported.push(error);
      // A throwing onError must not turn one failure into two.
      throw new Error('onError bug');
    };

    const node = await startServer({ router, createContext: createContext as never, onError });
    cleanup(() => node.close());
    const fetchHandler = createLongPollHandler({ router, createContext: createContext as never, onError });
    cleanup(() => fetchHandler.close());

    for (const raw of [rawPoller((req) => fetch(req), node.url), rawPoller(fetchHandler, 'http://local/')]) {
      const broken = await raw.poll(randomClientId(), 1, [{ key: 'a', path: 'ok' }], { connectionParams: { mode: 'explode' } });
      expect(broken.status).toBe(500);
      expect(broken.json).toEqual({ v: 1, error: { message: 'Internal server error', code: -32603 } });
      expect(containsStack(broken.text)).toBe(false);
      const fine = await raw.poll(randomClientId(), 1, [{ key: 'a', path: 'ok' }]);
      expect(fine.status).toBe(200);
      expect(fine.json.results.a.events).toHaveLength(1);
    }
    expect(reported.length).toBeGreaterThanOrEqual(2);
  });
});
