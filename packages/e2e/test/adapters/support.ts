import { createServer, type RequestListener, type Server } from 'node:http';
import { incomingMessageToRequest } from '@trpc/server/adapters/node-http';
import { expect } from 'vitest';
import { createLongPollClient, createTestRouter, recorder, type TestPost } from '../../src';

/**
 * A real `node:http` server that hands every request to a Fetch handler, as
 * Bun, Deno, Workers or a Next.js route handler would.
 */
export function fetchServer(handler: (req: Request) => Promise<Response>): Server {
  const listener: RequestListener = (req, res) => {
    void (async () => {
      const response = await handler(incomingMessageToRequest(req, res, { maxBodySize: null }));
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(Buffer.from(await response.arrayBuffer()));
    })().catch((cause: unknown) => {
      res.statusCode = 500;
      res.end(String(cause));
    });
  };
  return createServer(listener);
}

export type Fixture = ReturnType<typeof createTestRouter>;

/**
 * What every adapter must do with the real client: deliver events published
 * through tRPC's own adapter on the same server, and give procedures the
 * context `createContext` built.
 */
export async function deliversThroughAdapter(url: string, fixture: Fixture): Promise<void> {
  const client = createLongPollClient<Fixture['router']>(url);
  const feed = recorder<TestPost>();
  const me = recorder();
  const feedSub = client.post.onAdd.subscribe(undefined, feed.callbacks);
  const meSub = client.me.subscribe(undefined, me.callbacks);
  try {
    await feed.untilStarted({ ms: 10_000 });
    await client.post.add.mutate({ text: 'one' });
    await client.post.add.mutate({ text: 'two' });
    await feed.untilData(2, { ms: 10_000 });
    expect(feed.data().map((d) => d.data.text)).toEqual(['one', 'two']);
    expect(feed.data()[0]!.data.at).toBeInstanceOf(Date);

    await me.untilData(1, { ms: 10_000 });
    expect(me.data()).toEqual(['ann']);
  } finally {
    feedSub.unsubscribe();
    meSub.unsubscribe();
  }
}

/** Records the arguments the long-poll side's `createContext` got, told apart from tRPC's by `info.type`. */
export function contextSpy<TArgs extends { info: { type: string } }>() {
  const polls: TArgs[] = [];
  return {
    polls,
    createContext: (args: TArgs) => {
      if (args.info.type === 'subscription') polls.push(args);
      return { user: 'ann' as string | null };
    },
  };
}
