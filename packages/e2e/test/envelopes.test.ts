import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink } from '@trpc/client';
import { EventSource } from 'eventsource';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import { createLongPollClient, createTestRouter, recorder, startServer, type Recorded, type TestRouter } from '../src';
import { useCleanup } from '../src/cleanup';

/**
 * The long-poll link must be a drop-in for tRPC's own SSE link: the same
 * router, on the same server, should tell the application the same story.
 */
const cleanup = useCleanup();

async function setUp() {
  const fixture = createTestRouter();
  const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }) });
  cleanup(() => server.close());
  const longPoll = createLongPollClient<TestRouter>(server.url);
  const sse = createTRPCClient<TestRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({ url: server.url, transformer: superjson, EventSource }),
        false: httpBatchLink({ url: server.url, transformer: superjson }),
      }),
    ],
  });
  return { fixture, server, clients: { longPoll, sse } };
}

/** The story without error details, which differ by transport wording. */
function kinds(log: Recorded[]): string[] {
  return log.map((entry) => (entry.kind === 'state' ? `state:${entry.state}` : entry.kind));
}

const ended = (log: Recorded[]) => log.some((e) => e.kind === 'complete' || e.kind === 'error');

describe('the envelopes match httpSubscriptionLink', () => {
  it('happy path with tracked events', async () => {
    const { fixture, clients } = await setUp();
    const stories: Record<string, ReturnType<typeof recorder>> = {};
    for (const [name, client] of Object.entries(clients)) {
      const rec = recorder();
      stories[name] = rec;
      const sub = client.post.onAdd.subscribe(undefined, rec.callbacks);
      cleanup(() => sub.unsubscribe());
      await rec.until((log) => log.some((e) => e.kind === 'started'));
    }
    fixture.feed.publish({ text: 'one', at: new Date(1) });
    fixture.feed.publish({ text: 'two', at: new Date(2) });
    for (const rec of Object.values(stories)) await rec.until(() => rec.data().length === 2);
    expect(kinds(stories.longPoll!.log)).toEqual(['state:connecting', 'started', 'state:pending', 'data', 'data']);
    expect(kinds(stories.longPoll!.log)).toEqual(kinds(stories.sse!.log));
    expect(stories.longPoll!.data()).toEqual(stories.sse!.data());
    expect(stories.longPoll!.data()).toEqual([
      { id: '1', data: { text: 'one', at: new Date(1) } },
      { id: '2', data: { text: 'two', at: new Date(2) } },
    ]);
  });

  it('server-ended subscription: stopped, idle, complete', async () => {
    const { clients } = await setUp();
    const stories: Record<string, ReturnType<typeof recorder>> = {};
    for (const [name, client] of Object.entries(clients)) {
      const rec = recorder();
      stories[name] = rec;
      client.countdown.subscribe({ from: 5 }, rec.callbacks);
      await rec.until(ended);
    }
    expect(kinds(stories.longPoll!.log)).toEqual([
      'state:connecting',
      'started',
      'state:pending',
      'data',
      'data',
      'data',
      'stopped',
      'state:idle',
      'complete',
    ]);
    expect(kinds(stories.longPoll!.log)).toEqual(kinds(stories.sse!.log));
    expect(stories.longPoll!.data()).toEqual([5, 4, 3]);
    expect(stories.sse!.data()).toEqual([5, 4, 3]);
  });

  it('fatal error', async () => {
    const { clients } = await setUp();
    const stories: Record<string, ReturnType<typeof recorder>> = {};
    for (const [name, client] of Object.entries(clients)) {
      const rec = recorder();
      stories[name] = rec;
      const sub = client.forbidden.subscribe(undefined, rec.callbacks);
      cleanup(() => sub.unsubscribe());
      await rec.until(ended);
    }
    // Both links announce `started` first: the procedure only throws once iterated.
    expect(kinds(stories.longPoll!.log)).toEqual(['state:connecting', 'started', 'state:pending', 'error']);
    expect(kinds(stories.longPoll!.log)).toEqual(kinds(stories.sse!.log));
    const errorOf = (rec: ReturnType<typeof recorder>) => {
      const entry = rec.log.find((e) => e.kind === 'error') as Extract<Recorded, { kind: 'error' }>;
      const { stack: _stack, ...data } = entry.error.data as Record<string, unknown>;
      return { message: entry.error.message, code: entry.error.shape?.code, data };
    };
    expect(errorOf(stories.longPoll!)).toEqual({
      message: 'No access',
      code: -32003,
      data: { code: 'FORBIDDEN', httpStatus: 403, path: 'forbidden', reason: 'policy 7' },
    });
    expect(errorOf(stories.longPoll!)).toEqual(errorOf(stories.sse!));
  });
});
