import { fastifyTRPCPlugin } from '@trpc/server/adapters/fastify';
import { fastifyLongPollPlugin, type LongPollFastifyHandler } from '@trpc-longpoll/server/adapters/fastify';
import fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { createLongPollClient, createTestRouter, recorder, useCleanup, waitFor, type TestPost, type TestRouter } from '../../src';

const cleanup = useCleanup();

describe('stats through the Fastify plugin', () => {
  it('hands its handler to onHandler, whose stats() count a real client and whose close() drains', async () => {
    const fixture = createTestRouter();
    const trpcOptions = { router: fixture.router, createContext: () => ({ user: 'ann' }), holdMs: 5_000 };
    const handlers: LongPollFastifyHandler[] = [];
    const server = fastify();
    await server.register(fastifyTRPCPlugin, { prefix: '/trpc', trpcOptions });
    await server.register(fastifyLongPollPlugin, { prefix: '/trpc', trpcOptions, onHandler: (handler: LongPollFastifyHandler) => handlers.push(handler) });
    const address = await server.listen({ port: 0, host: '127.0.0.1' });
    cleanup(() => server.close());
    expect(handlers).toHaveLength(1);
    const longPoll = handlers[0]!;
    expect(longPoll.stats()).toMatchObject({ heldPolls: 0, sessions: 0, runs: { total: 0, byPath: {} } });

    const client = createLongPollClient<TestRouter>(`${address}/trpc`, { holdMs: 5_000 });
    const rec = recorder<TestPost>();
    const sub = client.post.onAdd.subscribe({ lastEventId: '0' }, rec.callbacks);
    cleanup(() => sub.unsubscribe());
    await rec.untilStarted();
    await waitFor(() => longPoll.stats().heldPolls === 1, 5_000, 'the client held');
    expect(longPoll.stats()).toMatchObject({ sessions: 1, runs: { total: 1, byPath: { 'post.onAdd': 1 } } });

    fixture.feed.publish({ text: 'hi', at: new Date() });
    await rec.untilData(1);
    const { counters } = longPoll.stats();
    expect(counters.runs).toEqual({ started: 1, resumed: 0, adopted: 0 });
    expect(counters.eventsDelivered).toBe(1);
    expect(counters.refusals).toEqual({});

    // The same handler Fastify's preClose closes: the held poll is answered as a drain.
    await waitFor(() => longPoll.stats().heldPolls === 1, 5_000, 'the client held again');
    await longPoll.close();
    expect(longPoll.stats().counters.polls.drain).toBe(1);
    expect(longPoll.stats().sessions).toBe(0);
  });
});
