import { createTRPCClient, createWSClient, httpBatchLink, httpSubscriptionLink, splitLink, wsLink } from '@trpc/client';
import { applyWSSHandler } from '@trpc/server/adapters/ws';
import { initTRPC, tracked } from '@trpc/server';
import { createMemoryEventLog, isBookmark, type EventLog } from '@trpc-longpoll/server';
import { EventSource } from 'eventsource';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { z } from 'zod';
import {
  createLongPollClient,
  createRoomRouter,
  randomClientId,
  rawPoller,
  recorder,
  startProxy,
  startServer,
  useCleanup,
  waitFor,
  type RoomRouter,
  type RoomTopics,
} from '../src';

/**
 * Bookmarks pin "from now" (docs/protocol.md §4, §9): a subscription started
 * without `lastEventId` gets its position with its announcement, so a run
 * lost before its first event resumes from there instead of from a later now.
 */
const cleanup = useCleanup();

async function serve(log: EventLog<RoomTopics>, name: string, router = createRoomRouter(log, name)) {
  const server = await startServer({ router, holdMs: 2_000, cluster: log.cluster });
  cleanup(() => server.close());
  return server;
}

function raw(url: string) {
  return rawPoller((req) => fetch(req), url);
}

const room = (name: string) => ({ path: 'onRoom', input: { json: { room: name } } });

describe('bookmarks on the wire', () => {
  it('a revision-1 client gets its position with the announcement, then events after it', async () => {
    const log = createMemoryEventLog<RoomTopics>();
    await log.publish('room:a', { text: 'before', publisher: 't', via: 't' });
    const head = await log.head('room:a');
    const server = await serve(log, 'A');
    const client = randomClientId();

    const first = await raw(server.url).poll(client, 1, [{ key: 's', ...room('a') }], { minor: 1 });
    expect(first.json).toEqual({
      v: 1,
      results: { s: { run: expect.any(String), events: [{ seq: 1, id: head, bookmark: true }] } },
      via: expect.any(String),
    });

    const id = await log.publish('room:a', { text: 'after', publisher: 't', via: 't' });
    const cursor = { run: first.json.results.s.run, seq: 1, lastEventId: head };
    const second = await raw(server.url).poll(client, 2, [{ key: 's', ...room('a'), cursor }], { minor: 1, hold: 2_000 });
    expect(second.json.results.s.events).toEqual([{ seq: 2, id, data: { json: { text: 'after', publisher: 't', via: 't' } } }]);
  });

  it('a client that does not say `minor` sees exactly what version 1.0 sent: no bookmark, no via', async () => {
    const log = createMemoryEventLog<RoomTopics>();
    const server = await serve(log, 'A');
    const first = await raw(server.url).poll(randomClientId(), 1, [{ key: 's', ...room('a') }]);
    expect(first.json).toEqual({ v: 1, results: { s: { run: expect.any(String) } } });
  });

  it('the link hands the application no bookmark, and its cursor carries the position from the announcement on', async () => {
    const log = createMemoryEventLog<RoomTopics>();
    const head = await log.head('room:a');
    const server = await serve(log, 'A');
    const bodies: any[] = [];
    const trpc = createLongPollClient<RoomRouter>(server.url, {
      fetch: (url, init) => {
        bodies.push(JSON.parse(init.body as string));
        return fetch(url, init);
      },
    });
    const rec = recorder<{ id: string; data: { text: string } }>();
    const sub = trpc.onRoom.subscribe({ room: 'a' }, rec.callbacks);
    cleanup(() => sub.unsubscribe());
    await rec.untilStarted();
    await waitFor(() => bodies.length >= 2);
    expect(bodies[1].subscriptions[0].cursor).toMatchObject({ seq: 1, lastEventId: head });

    const id = await log.publish('room:a', { text: 'one', publisher: 't', via: 't' });
    expect((await rec.untilData(1)).map((event) => [event.id, event.data.text])).toEqual([[id, 'one']]);
    expect(rec.story()).toEqual(['connecting', 'started', 'pending', 'data']);
  });
});

describe('"from now" survives losing its run before the first event', () => {
  it('the instance that announced the subscription dies; the next one replays from the pinned position', async () => {
    const log = createMemoryEventLog<RoomTopics>();
    const a = await serve(log, 'A');
    const b = await serve(log, 'B');
    const proxy = await startProxy({ upstreams: [a.url] });
    cleanup(() => proxy.close());
    const trpc = createLongPollClient<RoomRouter>(proxy.url, { retry: { initialDelayMs: 10, maxDelayMs: 50 } });
    const rec = recorder<{ id: string; data: { text: string } }>();
    const sub = trpc.onRoom.subscribe({ room: 'x' }, rec.callbacks);
    cleanup(() => sub.unsubscribe());
    await rec.untilStarted();

    // A vanishes with its run (and whatever that run buffered); later polls reach B.
    proxy.setUpstreams([b.url]);
    a.server.closeAllConnections();
    a.server.close();
    const published = [];
    for (const text of ['lost-before-bookmarks-1', 'lost-before-bookmarks-2']) published.push(await log.publish('room:x', { text, publisher: 't', via: 't' }));

    const received = await rec.untilData(2, { ms: 10_000 });
    expect(received.map((event) => event.id)).toEqual(published);
    expect(rec.errors()).toEqual([]);
  });
});

describe('procedures that take part, and procedures that do not', () => {
  function filteringRouter(log: EventLog<RoomTopics>, passBookmarks: boolean) {
    const t = initTRPC.create({ transformer: superjson });
    return t.router({
      onShouts: t.procedure.input(z.object({ room: z.string() })).subscription(async function* ({ input, signal }) {
        for await (const event of log.subscribe(`room:${input.room}`, { signal })) {
          if (isBookmark(event)) {
            if (passBookmarks) yield event;
            continue;
          }
          if (event[1].text.endsWith('!')) yield tracked(event[0], event[1].text);
        }
      }),
    });
  }

  it('a procedure that filters events passes bookmarks on, and its client gets the position', async () => {
    const log = createMemoryEventLog<RoomTopics>();
    const head = await log.head('room:f');
    const server = await startServer({ router: filteringRouter(log, true), holdMs: 2_000 });
    cleanup(() => server.close());
    const first = await raw(server.url).poll(randomClientId(), 1, [{ key: 's', path: 'onShouts', input: { json: { room: 'f' } } }], { minor: 1 });
    expect(first.json.results.s.events).toEqual([{ seq: 1, id: head, bookmark: true }]);
  });

  it('one that drops the bookmark is announced when its source moves past it, not after the two-second wait', async () => {
    const log = createMemoryEventLog<RoomTopics>();
    const server = await startServer({ router: filteringRouter(log, false), holdMs: 2_000 });
    cleanup(() => server.close());
    const startedAt = Date.now();
    const first = await raw(server.url).poll(randomClientId(), 1, [{ key: 's', path: 'onShouts', input: { json: { room: 'g' } } }], { minor: 1 });
    expect(first.json.results.s).toEqual({ run: expect.any(String) });
    // Generous: the settle path answers within a turn; the fallback would take 2 000 ms.
    expect(Date.now() - startedAt).toBeLessThan(1_500);
  });

  it("tRPC's own SSE link sees the log's events and nothing else", async () => {
    const log = createMemoryEventLog<RoomTopics>();
    const server = await serve(log, 'A');
    const sse = createTRPCClient<RoomRouter>({
      links: [
        splitLink({
          condition: (op) => op.type === 'subscription',
          true: httpSubscriptionLink({ url: server.url, transformer: superjson, EventSource }),
          false: httpBatchLink({ url: server.url, transformer: superjson }),
        }),
      ],
    });
    const rec = recorder<{ id: string; data: { text: string } }>();
    const sub = sse.onRoom.subscribe({ room: 's' }, rec.callbacks);
    cleanup(() => sub.unsubscribe());
    await rec.untilStarted();
    // The SSE run starts from "now" when its generator first runs, which may be after `started`.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const ids = [await log.publish('room:s', { text: 'one', publisher: 't', via: 't' }), await log.publish('room:s', { text: 'two', publisher: 't', via: 't' })];
    const received = await rec.untilData(2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(rec.data().map((event) => event.id)).toEqual(ids);
    expect(received.map((event) => event.data.text)).toEqual(['one', 'two']);
  });
});

describe("tRPC's WebSocket transport", () => {
  it('wsLink sees the log\'s events and nothing else', async () => {
    const log = createMemoryEventLog<RoomTopics>();
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((resolve) => wss.once('listening', resolve));
    const handler = applyWSSHandler({ wss, router: createRoomRouter(log, 'W') });
    const ws = createWSClient({ url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`, WebSocket: WebSocket as never });
    cleanup(async () => {
      await ws.close();
      handler.broadcastReconnectNotification();
      await new Promise((resolve) => wss.close(resolve));
    });
    const client = createTRPCClient<RoomRouter>({ links: [wsLink({ client: ws, transformer: superjson })] });
    const rec = recorder<{ id: string; data: { text: string } }>();
    const sub = client.onRoom.subscribe({ room: 'w' }, rec.callbacks);
    cleanup(() => sub.unsubscribe());
    await rec.untilStarted();
    // As over SSE, the run starts from "now" when its generator first runs, which may be after `started`.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const ids = [await log.publish('room:w', { text: 'one', publisher: 't', via: 't' }), await log.publish('room:w', { text: 'two', publisher: 't', via: 't' })];
    await rec.untilData(2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(rec.data().map((event) => event.id)).toEqual(ids);
  });
});
