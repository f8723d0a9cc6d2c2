import { createServer } from 'node:http';
import { createExpressMiddleware, type CreateExpressContextOptions } from '@trpc/server/adapters/express';
import { createLongPollExpressMiddleware } from '@trpc-longpoll/server/adapters/express';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestRouter, listen } from '../../src';
import { contextSpy, deliversThroughAdapter } from './support';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(withJsonParser: boolean) {
  const fixture = createTestRouter();
  const spy = contextSpy<CreateExpressContextOptions>();
  const opts = { router: fixture.router, createContext: spy.createContext };
  const longPoll = createLongPollExpressMiddleware(opts);
  const app = express();
  if (withJsonParser) app.use(express.json());
  app.use('/trpc', longPoll, createExpressMiddleware(opts));
  const server = await listen(createServer(app));
  cleanups.push(server.close, longPoll.close);
  return { fixture, spy, url: `${server.url}/trpc` };
}

describe('Express adapter', () => {
  it('mounts in front of createExpressMiddleware and serves the real client', async () => {
    const { fixture, spy, url } = await serve(false);
    await deliversThroughAdapter(url, fixture);
    const args = spy.polls[0]!;
    expect(Object.keys(args).sort()).toEqual(['info', 'req', 'res']);
    // Express's own request and response, with what Express adds to them.
    expect(args.req.baseUrl).toBe('/trpc');
    expect(args.req.app).toBeTypeOf('function');
    expect(args.res.locals).toEqual({});
  });

  it('uses the body express.json() already parsed', async () => {
    const { fixture, spy, url } = await serve(true);
    await deliversThroughAdapter(url, fixture);
    expect(spy.polls[0]!.req.body).toMatchObject({ v: 1, subscriptions: expect.any(Array) });
  });

  it('passes what is not a poll to the next handler', async () => {
    const { url } = await serve(true);
    const query = await fetch(`${url}/hello`);
    expect(await query.json()).toEqual({ result: { data: { json: 'world' } } });
  });
});
