import { fastifyTRPCPlugin, type CreateFastifyContextOptions } from '@trpc/server/adapters/fastify';
import { fastifyLongPollPlugin } from '@trpc-longpoll/server/adapters/fastify';
import fastify from 'fastify';
import superjson from 'superjson';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestRouter, waitFor } from '../../src';
import { contextSpy, deliversThroughAdapter } from './support';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve() {
  const fixture = createTestRouter();
  const spy = contextSpy<CreateFastifyContextOptions>();
  const trpcOptions = { router: fixture.router, createContext: spy.createContext };
  const server = fastify();
  await server.register(fastifyTRPCPlugin, { prefix: '/trpc', trpcOptions });
  await server.register(fastifyLongPollPlugin, { prefix: '/trpc', trpcOptions });
  const address = await server.listen({ port: 0, host: '127.0.0.1' });
  cleanups.push(() => server.close());
  return { fixture, spy, server, url: `${address}/trpc` };
}

const pollBody = JSON.stringify({ v: 1, client: 'c', poll: 1, subscriptions: [{ key: 'a', path: 'post.onAdd' }] });

describe('Fastify adapter', () => {
  it('registers beside fastifyTRPCPlugin with the same options and serves the real client', async () => {
    const { fixture, spy, url } = await serve();
    await deliversThroughAdapter(url, fixture);
    const args = spy.polls[0]!;
    expect(Object.keys(args).sort()).toEqual(['info', 'req', 'res']);
    // Fastify's own request and reply, not the raw Node objects.
    expect(args.req.raw).toBeDefined();
    expect(args.req.routeOptions.url).toBe('/trpc');
    expect(args.res.raw).toBeDefined();
    expect(args.res.code).toBeTypeOf('function');
  });

  it('answers malformed and oversized polls in the protocol, not in Fastify’s format', async () => {
    const { url } = await serve();
    const garbage = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{oops' });
    expect(garbage.status).toBe(400);
    const { error } = (await garbage.json()) as { v: number; error: Parameters<typeof superjson.deserialize>[0] };
    expect(superjson.deserialize(error)).toMatchObject({ data: { code: 'PARSE_ERROR' } });

    const huge = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(1024 * 1024 + 1) });
    expect(huge.status).toBe(413);
    expect(superjson.deserialize(((await huge.json()) as { error: any }).error)).toMatchObject({ data: { code: 'PAYLOAD_TOO_LARGE' } });
  });

  it('answers held polls when Fastify closes, instead of holding the shutdown', async () => {
    const { server, spy, url } = await serve();
    const first = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: pollBody });
    const { results } = (await first.json()) as { results: { a: { run: string } } };
    const held = fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ v: 1, client: 'c', poll: 2, subscriptions: [{ key: 'a', path: 'post.onAdd', cursor: { run: results.a.run, seq: 0 } }] }),
    });
    // Held once its context exists; the hold is 20 s, so the test's own limit fails it if close waited.
    await waitFor(() => spy.polls.length === 2, 10_000, 'the second poll');
    await new Promise((resolve) => setImmediate(resolve));
    await server.close();
    const answer = await held;
    expect(answer.status).toBe(200);
  });
});
