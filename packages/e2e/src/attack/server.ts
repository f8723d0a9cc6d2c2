/**
 * The target of the attack tests, in a process of its own so that its memory
 * is measured alone: `node --expose-gc --import tsx packages/e2e/src/attack/server.ts`
 * with NODE_ENV=production, mounted as docs/adapters.md shows (node:http,
 * the long-poll handler in front of tRPC's standalone handler).
 *
 * Environment: IDENTIFY=1 (identify by the bearer token), BUDGET_KEY=address
 * (anonymous polls count against the remote address), LONGPOLL_OPTIONS
 * (JSON, merged into the handler's options). Prints `{"listening": url}`.
 * `GET /__stats` answers memory after a full GC and the procedures alive;
 * `POST /__revoke?user=u` makes `createContext` refuse that user from then on.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { initTRPC, TRPCError } from '@trpc/server';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { createLongPollNodeHandler } from '@trpc-longpoll/server';
import superjson from 'superjson';
import { z } from 'zod';
import { createFeed } from '../feed';

type Context = { user: string | null };
const t = initTRPC.context<Context>().create({ isDev: false, transformer: superjson });
const live: Record<string, number> = { silent: 0, fast: 0, big: 0, ticks: 0, typed: 0 };
const revoked = new Set<string>();
const feed = createFeed<{ n: number; at: Date }>();
const big = 'x'.repeat(5 * 1024 * 1024);

async function* counted<T>(name: string, body: AsyncGenerator<T>): AsyncGenerator<T> {
  live[name]!++;
  try {
    yield* body;
  } finally {
    live[name]!--;
  }
}

function untilAborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!signal || signal.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

export const attackRouter = t.router({
  /** Never yields. */
  silent: t.procedure.subscription(({ signal }) =>
    counted('silent', (async function* () {
      await untilAborted(signal);
    })() as AsyncGenerator<never>),
  ),
  /** Yields an untracked event every 100 ms: a run nobody reads fills its buffer. */
  fast: t.procedure.subscription(({ signal }) =>
    counted('fast', (async function* () {
      for (let i = 0; !signal?.aborted; i++) {
        yield { i, pad: 'p'.repeat(100) };
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })()),
  ),
  /** Yields one 5 MiB event, then waits. */
  big: t.procedure.subscription(({ signal }) =>
    counted('big', (async function* () {
      yield big;
      await untilAborted(signal);
    })()),
  ),
  /** A schema'd input, then waits. */
  typed: t.procedure.input(z.object({ room: z.string().max(64) })).subscription(({ signal }) =>
    counted('typed', (async function* () {
      await untilAborted(signal);
    })() as AsyncGenerator<never>),
  ),
  /** The legitimate client's feed: tracked, so nothing may be missed. */
  ticks: t.procedure.input(z.object({ lastEventId: z.string().nullish() }).optional()).subscription(({ input, signal }) =>
    counted('ticks', feed.subscribe(input?.lastEventId, signal)),
  ),
  head: t.procedure.query(() => String(feed.size)),
});
export type AttackRouter = typeof attackRouter;

function createContext({ req }: { req: IncomingMessage }): Context {
  const user = req.headers.authorization?.replace(/^Bearer /, '') ?? null;
  if (user && revoked.has(user)) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Revoked' });
  return { user };
}

const longPoll = createLongPollNodeHandler({
  router: attackRouter,
  createContext,
  ...(process.env.IDENTIFY === '1' ? { identify: ({ ctx }: { ctx: Context }) => ctx.user } : {}),
  // As docs/deploying.md shows for a server that clients reach directly (no proxy in front).
  ...(process.env.BUDGET_KEY === 'address' ? { budgetKey: ({ req }: { req: IncomingMessage }) => req.socket.remoteAddress } : {}),
  ...(JSON.parse(process.env.LONGPOLL_OPTIONS ?? '{}') as object),
});
const trpc = createHTTPHandler({ router: attackRouter, createContext });

const server = createServer((req, res) => {
  if (req.url === '/__stats') {
    (globalThis as { gc?: () => void }).gc?.();
    const { rss, heapUsed } = process.memoryUsage();
    res.end(JSON.stringify({ rss, heapUsed, live, published: feed.size }));
    return;
  }
  if (req.url?.startsWith('/__revoke?user=')) {
    revoked.add(decodeURIComponent(req.url.slice('/__revoke?user='.length)));
    res.end('{}');
    return;
  }
  longPoll(req, res, () => trpc(req, res));
});

// The legitimate traffic every attack runs beside: one event every 20 ms.
let n = 0;
const publisher = setInterval(() => feed.publish({ n: ++n, at: new Date() }), 20);

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ listening: `http://127.0.0.1:${port}` })}\n`);
});

const shutdown = async () => {
  clearInterval(publisher);
  await longPoll.close();
  server.close();
  server.closeAllConnections();
  process.stdin.destroy();
};
process.once('SIGTERM', () => void shutdown());
process.stdin.once('end', () => void shutdown().finally(() => process.exit(0)));
process.stdin.resume();
