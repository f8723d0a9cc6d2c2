import { fetchRequestHandler, type FetchCreateContextFnOptions } from '@trpc/server/adapters/fetch';
import { createLongPollHandler } from '@trpc-longpoll/server';
import superjson from 'superjson';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestRouter, listen, type Listening } from '../../src';
import { contextSpy, deliversThroughAdapter, fetchServer } from './support';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function poll(body: unknown, init: RequestInit = {}): Request {
  return new Request('http://localhost/api/trpc', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...init,
  });
}

describe('fetch adapter', () => {
  it('answers real Request objects with real Responses, across successive polls', async () => {
    const fixture = createTestRouter();
    const spy = contextSpy<FetchCreateContextFnOptions>();
    const handler = createLongPollHandler({
      router: fixture.router,
      endpoint: '/api/trpc',
      createContext: (args) => {
        args.resHeaders.set('x-from-context', 'yes');
        return spy.createContext(args);
      },
    });
    cleanups.push(handler.close);

    const subscriptions = [{ key: 'a', path: 'post.onAdd' }];
    const first = await handler(poll({ v: 1, client: 'c', poll: 1, subscriptions }));
    expect(first).toBeInstanceOf(Response);
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-control')).toBe('no-store');
    expect(first.headers.get('x-from-context')).toBe('yes');
    const { results } = (await first.json()) as { results: { a: { run: string } } };
    const run = results.a.run;
    expect(run).toEqual(expect.any(String));

    // The procedure keeps running between polls: what it yields meanwhile is in the next answer.
    fixture.feed.publish({ text: 'between', at: new Date(0) });
    const second = await handler(poll({ v: 1, client: 'c', poll: 2, subscriptions: [{ ...subscriptions[0], cursor: { run, seq: 0 } }] }));
    const body = (await second.json()) as { results: { a: { run: string; events: { seq: number; id: string; data: any }[] } } };
    expect(body.results.a.run).toBe(run);
    expect(body.results.a.events).toHaveLength(1);
    expect(body.results.a.events[0]).toMatchObject({ seq: 1, id: '1' });
    expect(superjson.deserialize(body.results.a.events[0]!.data)).toEqual({ text: 'between', at: new Date(0) });

    expect(spy.polls).toHaveLength(2);
    const args = spy.polls[0]!;
    expect(Object.keys(args).sort()).toEqual(['info', 'req', 'resHeaders']);
    expect(args.req).toBeInstanceOf(Request);
    expect(args.resHeaders).toBeInstanceOf(Headers);
    expect(args.info.calls.map((call) => call.path)).toEqual(['post.onAdd']);
  });

  it('routes only polls to itself and refuses what is not a poll', async () => {
    const fixture = createTestRouter();
    const handler = createLongPollHandler({ router: fixture.router, endpoint: '/api/trpc', createContext: () => ({ user: null }) });
    cleanups.push(handler.close);

    expect(handler.matches(poll({}))).toBe(true);
    expect(handler.matches(new Request('http://localhost/api/trpc/hello'))).toBe(false);
    expect(handler.matches(new Request('http://localhost/api/trpc/post.add', { method: 'POST', body: '{}' }))).toBe(false);

    const get = await handler(new Request('http://localhost/api/trpc'));
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    const garbage = await handler(poll(undefined, { body: '{not json' }));
    expect(garbage.status).toBe(400);
    // Error shapes travel through the router's transformer, like every tRPC error.
    const { error } = (await garbage.json()) as { error: Parameters<typeof superjson.deserialize>[0] };
    expect(superjson.deserialize(error)).toMatchObject({ code: -32700, data: { code: 'PARSE_ERROR', httpStatus: 400 } });
  });

  it('serves the real client behind one real server, beside fetchRequestHandler', async () => {
    const fixture = createTestRouter();
    const spy = contextSpy<FetchCreateContextFnOptions>();
    const opts = { router: fixture.router, endpoint: '/api/trpc', createContext: spy.createContext };
    const longPoll = createLongPollHandler(opts);
    const server: Listening = await listen(
      fetchServer((req) => (longPoll.matches(req) ? longPoll(req) : fetchRequestHandler({ ...opts, req }))),
    );
    cleanups.push(server.close, longPoll.close);

    await deliversThroughAdapter(`${server.url}/api/trpc`, fixture);
    expect(spy.polls.length).toBeGreaterThan(0);
    expect(spy.polls[0]!.req.url).toMatch(new RegExp(`^${server.url}/api/trpc\\?lp_affinity=[0-9a-f]{12}$`));
  });
});
