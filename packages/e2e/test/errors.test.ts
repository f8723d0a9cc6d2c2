import { TRPCError } from '@trpc/server';
import { createTRPCUntypedClient, httpBatchLink, splitLink, TRPCClientError } from '@trpc/client';
import { longPollLink } from '@trpc-longpoll/client';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import { createLongPollClient, createTestRouter, recorder, startServer, useCleanup, waitFor, type TestRouter } from '../src';

const cleanup = useCleanup();

const polls = (requests: string[]) => requests.filter((path) => path === '/').length;

describe('errors', () => {
  it('createContext refusing the poll is fatal, with the formatted shape, and is not retried', async () => {
    const fixture = createTestRouter();
    const server = await startServer({
      router: fixture.router,
      createContext: () => {
        throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Who are you?', cause: new Error('no cookie') });
      },
    });
    cleanup(() => server.close());
    const sent: { subscriptions: unknown[] }[] = [];
    const client = createLongPollClient<TestRouter>(server.url, {
      retry: { initialDelayMs: 10, maxDelayMs: 20 },
      fetch: (url, init) => {
        sent.push(JSON.parse(String(init.body)));
        return fetch(url, init);
      },
    });
    const rec = recorder();
    client.ticks.subscribe({ room: 'a' }, rec.callbacks);
    const error = await rec.firstError();
    expect(error).toBeInstanceOf(TRPCClientError);
    expect(error.message).toBe('Who are you?');
    expect(error.data).toMatchObject({ code: 'UNAUTHORIZED', httpStatus: 401, reason: 'no cookie' });
    expect(rec.log.map((e) => e.kind)).toEqual(['state', 'error']);
    expect(fixture.started).toEqual([]);

    // With a 10 ms backoff, any retry would show up well within this window.
    await new Promise((resolve) => setTimeout(resolve, 300));
    // The one poll, then at most the farewell that tells the server nothing is left.
    expect(sent[0]!.subscriptions).toHaveLength(1);
    expect(sent.slice(1).every((body) => body.subscriptions.length === 0)).toBe(true);
    expect(sent.length).toBeLessThanOrEqual(2);
    expect(polls(server.requests)).toBe(sent.length);
  });

  it('a zod failure ends that subscription only; its neighbour in the same poll keeps receiving', async () => {
    const fixture = createTestRouter();
    const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }), holdMs: 1_000 });
    cleanup(() => server.close());
    const client = createLongPollClient<TestRouter>(server.url, { holdMs: 1_000 });
    const bad = recorder();
    const good = recorder();
    // Both join in the same tick, so they travel in one poll.
    client.ticks.subscribe({ room: 42 as unknown as string }, bad.callbacks);
    const sub = client.ticks.subscribe({ room: 'ok' }, good.callbacks);
    cleanup(() => sub.unsubscribe());

    expect((await bad.firstError()).data).toMatchObject({ code: 'BAD_REQUEST', httpStatus: 400, path: 'ticks' });
    await good.untilStarted();
    fixture.ticker.emit('ok', 1);
    fixture.ticker.emit('ok', 2);
    await good.untilData(2);
    expect(good.data()).toEqual([1, 2]);
    expect(good.errors()).toEqual([]);
  });

  it('an unknown path is NOT_FOUND and a query is METHOD_NOT_SUPPORTED, each saying what was sent', async () => {
    const fixture = createTestRouter();
    const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }) });
    cleanup(() => server.close());
    const client = createTRPCUntypedClient<TestRouter>({
      links: [
        splitLink({
          condition: (op) => op.type === 'subscription',
          true: longPollLink<TestRouter>({ url: server.url, transformer: superjson }),
          false: httpBatchLink({ url: server.url, transformer: superjson }),
        }),
      ],
    });
    const missing = recorder();
    const query = recorder();
    client.subscription('nope.nothing', undefined, missing.callbacks);
    client.subscription('hello', undefined, query.callbacks);
    const notFound = await missing.firstError();
    const notSupported = await query.firstError();

    expect(notFound.data).toMatchObject({ code: 'NOT_FOUND', path: 'nope.nothing' });
    expect(notFound.message).toContain('nope.nothing');
    expect(notSupported.data).toMatchObject({ code: 'METHOD_NOT_SUPPORTED', path: 'hello' });
    expect(notSupported.message).toBe('"hello" is a query; only subscriptions can be long-polled');
  });

  it('a middleware refusing inside the procedure ends the subscription, and the client says farewell', async () => {
    const fixture = createTestRouter();
    const server = await startServer({ router: fixture.router, createContext: () => ({ user: null }) });
    cleanup(() => server.close());
    const client = createLongPollClient<TestRouter>(server.url);
    const rec = recorder();
    // `me` is behind a middleware: the context exists, the procedure refuses.
    client.me.subscribe(undefined, rec.callbacks);
    expect((await rec.firstError()).data).toMatchObject({ code: 'UNAUTHORIZED', reason: null });
    await waitFor(() => server.inFlight() === 0, 2_000, 'the farewell');
  });

  it('a malformed poll gets 400 with a message naming the fault; queries still reach tRPC', async () => {
    const fixture = createTestRouter();
    const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }) });
    cleanup(() => server.close());
    // The error shape goes through the router's transformer (superjson here), like tRPC's own error bodies.
    const post = (body: string) => fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

    const notJson = await post('{nope');
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ v: 1, error: { json: { message: 'The poll body is not valid JSON', data: { code: 'PARSE_ERROR' } } } });

    const wrong = await post(JSON.stringify({ v: 1, client: 'c', poll: 1, subscriptions: [{ key: 'a' }] }));
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toMatchObject({
      v: 1,
      error: { json: { message: expect.stringContaining('subscriptions[0].path'), data: { code: 'BAD_REQUEST' } } },
    });

    const future = await post(JSON.stringify({ v: 9, client: 'c', poll: 1, subscriptions: [] }));
    expect(future.status).toBe(400);
    expect((await future.json()).error.json.message).toContain('trpc-longpoll v1');

    const query = await fetch(`${server.url}/hello`);
    expect(query.status).toBe(200);
    expect((await query.json()).result.data.json).toBe('world');
  });
});
