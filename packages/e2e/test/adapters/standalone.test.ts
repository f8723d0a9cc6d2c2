import { IncomingMessage, ServerResponse } from 'node:http';
import { createHTTPServer, type CreateHTTPContextOptions } from '@trpc/server/adapters/standalone';
import { createLongPollNodeHandler } from '@trpc-longpoll/server';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestRouter, listen } from '../../src';
import { contextSpy, deliversThroughAdapter } from './support';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("tRPC's standalone server", () => {
  it('takes the long-poll handler as its `middleware`', async () => {
    const fixture = createTestRouter();
    const spy = contextSpy<CreateHTTPContextOptions>();
    const longPoll = createLongPollNodeHandler({ router: fixture.router, createContext: spy.createContext });
    const server = await listen(createHTTPServer({ router: fixture.router, createContext: spy.createContext, middleware: longPoll }));
    cleanups.push(server.close, longPoll.close);

    await deliversThroughAdapter(server.url, fixture);
    const args = spy.polls[0]!;
    expect(Object.keys(args).sort()).toEqual(['info', 'req', 'res']);
    expect(args.req).toBeInstanceOf(IncomingMessage);
    expect(args.res).toBeInstanceOf(ServerResponse);
  });

  it('leaves every other request to tRPC', async () => {
    const fixture = createTestRouter();
    const longPoll = createLongPollNodeHandler({ router: fixture.router, createContext: () => ({ user: null }) });
    const server = await listen(createHTTPServer({ router: fixture.router, createContext: () => ({ user: null }), middleware: longPoll }));
    cleanups.push(server.close, longPoll.close);

    const res = await fetch(`${server.url}/hello`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ result: { data: { json: 'world' } } });
  });
});
