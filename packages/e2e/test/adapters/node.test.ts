import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import type { NodeHTTPCreateContextFnOptions } from '@trpc/server/adapters/node-http';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { createLongPollNodeHandler } from '@trpc-longpoll/server';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestRouter, listen } from '../../src';
import { contextSpy, deliversThroughAdapter } from './support';

type NodeArgs = NodeHTTPCreateContextFnOptions<IncomingMessage, ServerResponse>;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('node:http adapter', () => {
  it('serves the real client from a plain node:http server, in front of tRPC', async () => {
    const fixture = createTestRouter();
    const spy = contextSpy<NodeArgs>();
    const longPoll = createLongPollNodeHandler({ router: fixture.router, endpoint: '/trpc', createContext: spy.createContext });
    const trpc = createHTTPHandler({ router: fixture.router, basePath: '/trpc/', createContext: spy.createContext });
    const server = await listen(createServer((req, res) => longPoll(req, res, () => trpc(req, res))));
    cleanups.push(server.close, longPoll.close);

    await deliversThroughAdapter(`${server.url}/trpc`, fixture);
    const args = spy.polls[0]!;
    expect(Object.keys(args).sort()).toEqual(['info', 'req', 'res']);
    expect(args.req).toBeInstanceOf(IncomingMessage);
    expect(args.res).toBeInstanceOf(ServerResponse);
    expect(args.info.type).toBe('subscription');
  });

  it('reads the body itself when a parser before it set `req.body` without reading the stream', async () => {
    const fixture = createTestRouter();
    const longPoll = createLongPollNodeHandler({ router: fixture.router, createContext: () => ({ user: 'ann' }) });
    const server = await listen(
      createServer((req, res) => {
        // What Express 4's body-parser does for a content type it does not handle.
        (req as IncomingMessage & { body?: unknown }).body = {};
        longPoll(req, res);
      }),
    );
    cleanups.push(server.close, longPoll.close);

    const res = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ v: 1, client: 'c', poll: 1, subscriptions: [{ key: 'a', path: 'post.onAdd' }] }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { results: { a: { run: string } } }).results.a.run).toEqual(expect.any(String));
  });
});
