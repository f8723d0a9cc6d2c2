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

async function serve(withJsonParser: boolean, jsonLimit?: string) {
  const fixture = createTestRouter();
  const spy = contextSpy<CreateExpressContextOptions>();
  const opts = { router: fixture.router, createContext: spy.createContext };
  const longPoll = createLongPollExpressMiddleware(opts);
  const app = express();
  if (withJsonParser) app.use(express.json(jsonLimit ? { limit: jsonLimit } : {}));
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

  it('measures a body express.json() parsed under a higher limit: a chunked one over maxBodyBytes gets 413, and serving goes on', async () => {
    const { fixture, url } = await serve(true, '10mb');
    const huge = JSON.stringify({ v: 1, client: 'c', poll: 1, subscriptions: [{ key: 'k', path: 'post.onAdd', input: { json: { pad: 'x'.repeat(2 * 1024 * 1024) } } }] });
    // A stream body goes out chunked: no Content-Length for the handler to judge up front.
    const chunked = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(huge));
        controller.close();
      },
    });
    const answer = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chunked, duplex: 'half' } as RequestInit);
    expect(answer.status).toBe(413);
    expect(await answer.json()).toMatchObject({ v: 1, error: { json: { message: 'The poll body is larger than 1048576 bytes' } } });
    await deliversThroughAdapter(url, fixture);
  });

  it('passes what is not a poll to the next handler', async () => {
    const { url } = await serve(true);
    const query = await fetch(`${url}/hello`);
    expect(await query.json()).toEqual({ result: { data: { json: 'world' } } });
  });
});
