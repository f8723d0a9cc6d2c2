import { createServer, type IncomingMessage, type RequestListener, type ServerResponse, type Server, type ServerOptions } from 'node:http';
import { connect, type Socket } from 'node:net';
import { initTRPC, tracked, type AnyTRPCRouter } from '@trpc/server';
import { createExpressMiddleware } from '@trpc/server/adapters/express';
import { fastifyTRPCPlugin } from '@trpc/server/adapters/fastify';
import { fetchRequestHandler } from '@trpc/server/adapters/fetch';
import { incomingMessageToRequest } from '@trpc/server/adapters/node-http';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { createLongPollHandler, createLongPollNodeHandler, type LongPollOptions } from '@trpc-longpoll/server';
import { createLongPollExpressMiddleware } from '@trpc-longpoll/server/adapters/express';
import { fastifyLongPollPlugin } from '@trpc-longpoll/server/adapters/fastify';
import express from 'express';
import fastify from 'fastify';
import superjson from 'superjson';
import { z } from 'zod';
import { listen } from './listen';
import { runCounter } from './runCounter';

/*
 * HTTP/1.1 over a bare TCP socket, for requests no HTTP client would send:
 * unparsable request lines, lying framing, bodies that trickle in. Only the
 * first final answer is parsed; what the server does with the connection
 * afterwards (keep it, close it) is observed, not assumed.
 */

/** The first final (non-1xx) answer on a connection. */
export interface RawHttpAnswer {
  status: number;
  /** The status line's reason phrase. */
  reason: string;
  /** Header names lower-cased; a repeated header keeps its last value. */
  headers: Record<string, string>;
  /** The body as sent (chunk framing removed), decoded as UTF-8. */
  body: string;
  /** Milliseconds from the connection being opened to the answer being complete. */
  ms: number;
}

export interface RawConnection {
  socket: Socket;
  /** Milliseconds since the connection was opened. */
  elapsed(): number;
  /** Writes bytes; resolves once they were handed to the kernel (or the socket is gone). */
  write(data: string | Uint8Array): Promise<void>;
  /** The first final answer; rejects if the connection closes before one is complete. */
  answer: Promise<RawHttpAnswer>;
  /** The answer after the last one asked for (the first, then the next on a kept-alive connection). */
  nextAnswer(): Promise<RawHttpAnswer>;
  /** Resolves when the connection is closed, from either side, with the time it happened. */
  closed: Promise<{ ms: number; byServer: boolean }>;
  /** Whether the connection is closed now. */
  isClosed(): boolean;
  /** Every byte received so far. */
  received(): Buffer;
  destroy(): void;
}

export class NoAnswerError extends Error {
  constructor(readonly received: Buffer) {
    super(received.length === 0 ? 'closed without an answer' : `closed mid-answer: ${JSON.stringify(received.toString('latin1').slice(0, 200))}`);
  }
}

interface Parsed {
  answer: RawHttpAnswer;
  /** Where the next answer on the connection starts. */
  end: number;
}

/** Parses the first final answer from `from` on, or null if it is not complete yet. `eof`: nothing more will come. */
function parseAnswer(data: Buffer, from: number, opts: { head: boolean; eof: boolean; startedAt: number }): Parsed | null {
  let offset = from;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', offset, 'latin1');
    if (end < 0) return null;
    const lines = data.subarray(offset, end).toString('latin1').split('\r\n');
    const match = /^HTTP\/\d\.\d (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
    if (!match) throw new Error(`not an HTTP answer: ${JSON.stringify(lines[0])}`);
    const status = Number(match[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const bodyStart = end + 4;
    if (status >= 100 && status < 200) {
      // 100 Continue and friends: the final answer follows.
      offset = bodyStart;
      continue;
    }
    const done = (body: Buffer, end: number): Parsed => ({
      answer: { status, reason: match[2] ?? '', headers, body: body.toString('utf8'), ms: Date.now() - opts.startedAt },
      end,
    });
    // A stream (tRPC's SSE subscriptions) never ends: its head is the whole answer here.
    if (opts.head || status === 204 || status === 304 || headers['content-type']?.includes('text/event-stream')) return done(Buffer.alloc(0), bodyStart);
    if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
      const chunks: Buffer[] = [];
      let at = bodyStart;
      for (;;) {
        const lineEnd = data.indexOf('\r\n', at, 'latin1');
        if (lineEnd < 0) return null;
        const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
        if (!Number.isFinite(size)) throw new Error('bad chunk in answer');
        if (size === 0) {
          const trailerEnd = data.indexOf('\r\n', lineEnd + 2, 'latin1');
          return trailerEnd >= 0 ? done(Buffer.concat(chunks), trailerEnd + 2) : null;
        }
        if (data.length < lineEnd + 2 + size + 2) return null;
        chunks.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
    }
    if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (data.length - bodyStart < length) return null;
      return done(data.subarray(bodyStart, bodyStart + length), bodyStart + length);
    }
    // Neither: the body runs to the end of the connection.
    return opts.eof ? done(data.subarray(bodyStart), data.length) : null;
  }
}

/** Opens a connection to `127.0.0.1:port`; `head`: the request is a HEAD (its answer has no body). */
export async function openRaw(port: number, opts: { head?: boolean } = {}): Promise<RawConnection> {
  const startedAt = Date.now();
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let data = Buffer.alloc(0);
  let closed = false;
  let destroyedByUs = false;
  /** Where the next answer starts, and who waits for it (one at a time, in order). */
  let offset = 0;
  const waiting: { resolve: (a: RawHttpAnswer) => void; reject: (e: unknown) => void }[] = [];
  const tryParse = (eof: boolean) => {
    while (waiting.length > 0) {
      const waiter = waiting[0]!;
      try {
        const parsed = parseAnswer(data, offset, { head: opts.head === true, eof, startedAt });
        if (!parsed) {
          if (eof) {
            waiting.shift();
            waiter.reject(new NoAnswerError(data.subarray(offset)));
            continue;
          }
          return;
        }
        offset = parsed.end;
        waiting.shift();
        waiter.resolve(parsed.answer);
      } catch (cause) {
        waiting.shift();
        waiter.reject(cause);
      }
    }
  };
  const nextAnswer = () => {
    const promise = new Promise<RawHttpAnswer>((resolve, reject) => waiting.push({ resolve, reject }));
    // Callers that only care about the close must not leave a rejection unhandled.
    promise.catch(() => {});
    tryParse(closed);
    return promise;
  };
  const answer = nextAnswer();
  socket.on('data', (chunk: Buffer) => {
    data = Buffer.concat([data, chunk]);
    tryParse(false);
  });
  // A reset after the answer arrived is a way of closing, not a failure of the test.
  socket.on('error', () => {});
  const closedPromise = new Promise<{ ms: number; byServer: boolean }>((resolve) =>
    socket.once('close', () => {
      closed = true;
      tryParse(true);
      resolve({ ms: Date.now() - startedAt, byServer: !destroyedByUs });
    }),
  );
  return {
    socket,
    elapsed: () => Date.now() - startedAt,
    write: (chunk) =>
      new Promise<void>((resolve) => {
        if (socket.destroyed || !socket.writable) return resolve();
        socket.write(chunk, () => resolve());
      }),
    answer,
    nextAnswer,
    closed: closedPromise,
    isClosed: () => closed,
    received: () => data,
    destroy: () => {
      destroyedByUs = !closed;
      socket.destroy();
    },
  };
}

/** What one raw exchange came to. */
export type RawOutcome =
  | { kind: 'answer'; answer: RawHttpAnswer }
  /** The server closed (or reset) the connection before a complete answer. */
  | { kind: 'closed'; received: Buffer }
  /** Neither an answer nor a close within the deadline. */
  | { kind: 'deadline'; received: Buffer };

/**
 * Sends `bytes` in `parts` (pausing `pauseMs` between them), then waits for the
 * first final answer, a close or the deadline, and closes the connection.
 * `fin`: half-close after sending, as a client that sends nothing more would.
 */
export async function exchange(
  port: number,
  bytes: Uint8Array | string,
  opts: { deadlineMs: number; head?: boolean; fin?: boolean; splitAt?: number; pauseMs?: number },
): Promise<RawOutcome> {
  const conn = await openRaw(port, { head: opts.head });
  try {
    const buffer = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes);
    if (opts.splitAt !== undefined && opts.splitAt > 0 && opts.splitAt < buffer.length) {
      await conn.write(buffer.subarray(0, opts.splitAt));
      await new Promise((resolve) => setTimeout(resolve, opts.pauseMs ?? 5));
      await conn.write(buffer.subarray(opts.splitAt));
    } else {
      await conn.write(buffer);
    }
    if (opts.fin && !conn.socket.destroyed) conn.socket.end();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<'deadline'>((resolve) => (timer = setTimeout(() => resolve('deadline'), opts.deadlineMs)));
    try {
      const result = await Promise.race([conn.answer.then((answer) => ({ answer }), () => 'closed' as const), deadline]);
      if (result === 'deadline') return { kind: 'deadline', received: conn.received() };
      if (result === 'closed') return { kind: 'closed', received: conn.received() };
      return { kind: 'answer', answer: result.answer };
    } finally {
      clearTimeout(timer);
    }
  } finally {
    conn.destroy();
  }
}

/**
 * Runs tasks with at most `limit` in flight: `run` resolves once a slot is free, `drain` once
 * all are done. A task that throws is kept in `errors`, for the caller to assert on.
 */
export function pool(limit: number) {
  const running = new Set<Promise<unknown>>();
  const errors: unknown[] = [];
  return {
    errors,
    async run(task: () => Promise<unknown>): Promise<void> {
      while (running.size >= limit) await Promise.race(running);
      const promise: Promise<unknown> = task()
        .catch((cause: unknown) => errors.push(cause))
        .finally(() => running.delete(promise));
      running.add(promise);
    },
    async drain(): Promise<void> {
      while (running.size > 0) await Promise.race(running);
    },
  };
}

/*
 * The servers under attack: the router and each Node-hosted adapter mounted the way
 * docs/adapters.md shows, on a real loopback port, with the Node server timeouts the
 * caller chooses. Shared by http-attacks.test.ts and http-fuzz.test.ts.
 */

/** A production-mode router: one subscription that yields, one that waits, and tRPC's own calls beside them. */
export function httpTestRouter() {
  const t = initTRPC.context<HttpTestContext>().create({ isDev: false, transformer: superjson });
  const { stats, counted: running } = runCounter();
  const router = t.router({
    hello: t.procedure.query(() => 'world'),
    echo: t.procedure.input(z.object({ text: z.string() })).mutation(({ input }) => input.text),
    /** A tracked event every 20 ms, resumable from `lastEventId`, until the run is stopped. */
    yields: t.procedure.input(z.object({ lastEventId: z.string().nullish() }).optional()).subscription(({ input, signal }) =>
      running(async function* () {
        for (let i = Number(input?.lastEventId ?? 0) + 1; !signal?.aborted; i++) {
          yield tracked(String(i), i);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }),
    ),
    /** Never yields: its polls are held. */
    waits: t.procedure.subscription(({ signal }) =>
      running(async function* () {
        await new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }));
      }),
    ),
  });
  return { router, stats };
}

export type HttpTestRouter = ReturnType<typeof httpTestRouter>['router'];

export interface HttpTestContext {
  /** The URL `createContext` was given (tRPC's `info.url`): null when the request had none that parses. */
  url: URL | null;
}

export type NodeAdapterKind = 'node' | 'express' | 'express-json' | 'fastify' | 'fetch';

export const NODE_ADAPTERS: { kind: NodeAdapterKind; name: string }[] = [
  { kind: 'node', name: 'node:http + standalone createHTTPHandler' },
  { kind: 'express', name: 'Express' },
  { kind: 'express-json', name: 'Express after express.json()' },
  { kind: 'fastify', name: 'Fastify beside fastifyTRPCPlugin' },
  { kind: 'fetch', name: 'fetch handler behind a node:http → Request shim' },
];

/** Node's own HTTP server timeouts (`http.createServer` options). */
export interface NodeServerTimeouts {
  headersTimeout?: number;
  requestTimeout?: number;
  keepAliveTimeout?: number;
  connectionsCheckingInterval?: number;
}

export interface AdapterServer {
  kind: NodeAdapterKind;
  port: number;
  /** The tRPC endpoint, where polls go: `http://127.0.0.1:port/trpc`. */
  url: string;
  /** The path of `url`. */
  endpoint: string;
  stats: { starts: number; live: number };
  /** Every `info.url` the long-poll side's `createContext` got. */
  pollUrls: (URL | null)[];
  /** Every error `onError` was called with, by either handler. */
  errors: { by: 'long-poll' | 'trpc'; code: string; message: string }[];
  /** Every answer the server wrote, whoever wrote it (Node's own parser errors excepted), with how long it took. */
  answers: { method: string; url: string; status: number; ms: number }[];
  /** Requests whose head the server has received so far. */
  received(): number;
  server: Server;
  close(): Promise<void>;
}

/** Options for `startAdapter`: long-poll options and Node server timeouts. */
export type AdapterOptions = Omit<LongPollOptions<AnyTRPCRouter>, 'router' | 'onError'> & { timeouts?: NodeServerTimeouts };

/**
 * Starts one adapter on 127.0.0.1 as the docs mount it: node:http with tRPC's
 * standalone handler as the fallback, Express in front of createExpressMiddleware
 * (with or without express.json() first), Fastify beside fastifyTRPCPlugin, or
 * the fetch handler routed with `matches` beside fetchRequestHandler.
 */
export async function startAdapter(kind: NodeAdapterKind, options: AdapterOptions = {}): Promise<AdapterServer> {
  const { timeouts = {}, ...longPollOptions } = options;
  const { router, stats } = httpTestRouter();
  const pollUrls: (URL | null)[] = [];
  const errors: AdapterServer['errors'] = [];
  const createContext = ({ info }: { info: { type: string; url: URL | null } }): HttpTestContext => {
    if (info.type === 'subscription') pollUrls.push(info.url);
    return { url: info.url };
  };
  const onError = (by: 'long-poll' | 'trpc') => (o: { error: { code: string; message: string } }) => {
    errors.push({ by, code: o.error.code, message: o.error.message });
  };
  const common = { router, createContext: createContext as never };
  const longPollOpts = { ...common, ...longPollOptions, onError: onError('long-poll') as never };
  const trpcOpts = { ...common, onError: onError('trpc') as never };
  const serverOptions: ServerOptions = { ...timeouts };

  let server: Server;
  let closeHandler: () => Promise<void>;
  let closeServer: (() => Promise<void>) | undefined;
  if (kind === 'node') {
    const longPoll = createLongPollNodeHandler({ ...longPollOpts, endpoint: '/trpc' });
    const trpc = createHTTPHandler({ ...trpcOpts, basePath: '/trpc/' });
    server = createServer(serverOptions, (req, res) => longPoll(req, res, () => trpc(req, res)));
    closeHandler = longPoll.close;
  } else if (kind === 'express' || kind === 'express-json') {
    const longPoll = createLongPollExpressMiddleware(longPollOpts);
    const app = express();
    // Express's own error pages show stacks outside production; deployments run with NODE_ENV=production.
    app.set('env', 'production');
    if (kind === 'express-json') app.use(express.json());
    app.use('/trpc', longPoll, createExpressMiddleware(trpcOpts));
    server = createServer(serverOptions, app);
    closeHandler = longPoll.close;
  } else if (kind === 'fastify') {
    const { requestTimeout, keepAliveTimeout, ...http } = timeouts;
    const app = fastify({
      http,
      ...(requestTimeout !== undefined ? { requestTimeout } : {}),
      ...(keepAliveTimeout !== undefined ? { keepAliveTimeout } : {}),
    });
    await app.register(fastifyTRPCPlugin, { prefix: '/trpc', trpcOptions: trpcOpts });
    await app.register(fastifyLongPollPlugin, { prefix: '/trpc', trpcOptions: longPollOpts });
    await app.ready();
    server = app.server;
    closeHandler = async () => {};
    closeServer = () => app.close();
  } else {
    const longPoll = createLongPollHandler({ ...longPollOpts, endpoint: '/trpc' });
    const handler = (req: Request) =>
      longPoll.matches(req) ? longPoll(req) : fetchRequestHandler({ ...trpcOpts, endpoint: '/trpc', req });
    server = createServer(serverOptions, fetchShim(handler));
    closeHandler = longPoll.close;
  }
  const answers: AdapterServer['answers'] = [];
  let received = 0;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    received++;
    const started = Date.now();
    // Express rewrites `req.url` under its mount path; `originalUrl` keeps what came in.
    const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '';
    res.once('finish', () => answers.push({ method: req.method ?? '', url, status: res.statusCode, ms: Date.now() - started }));
  });
  const listening = await listen(server);
  const port = Number(new URL(listening.url).port);
  return {
    kind,
    port,
    url: `${listening.url}/trpc`,
    endpoint: '/trpc',
    stats,
    pollUrls,
    errors,
    answers,
    received: () => received,
    server,
    async close() {
      await closeHandler();
      if (closeServer) {
        // Fastify's preClose hook closes the handler; connections still open are dropped here.
        server.closeAllConnections();
        await closeServer();
      } else {
        await listening.close();
      }
    },
  };
}

/** Set on answers the shim itself gives, so a test can tell them from the handler's. */
export const SHIM_HEADER = 'x-test-shim';

/**
 * A node:http listener that hands each request to a Fetch handler, as Bun, Deno or
 * a Next.js route would. A request that cannot be a Fetch `Request` (a target or Host
 * that makes no URL) is refused with 400 here, as those runtimes refuse it before any
 * handler runs. A handler that rejects gets a 500 marked with `SHIM_HEADER`: the fetch
 * handler promises never to reject, so a test treats that as its failure.
 */
export function fetchShim(handler: (req: Request) => Promise<Response>): RequestListener {
  return (req, res) => {
    let request: Request;
    try {
      request = incomingMessageToRequest(req, res, { maxBodySize: null });
    } catch {
      res.writeHead(400, { [SHIM_HEADER]: 'not-a-request', connection: 'close' });
      res.end();
      return;
    }
    void handler(request)
      .then(async (response) => {
        if (res.destroyed) return void response.body?.cancel().catch(() => {});
        res.writeHead(response.status, Object.fromEntries(response.headers));
        // Streamed, as the runtimes do: tRPC's own answers to a GET of a subscription are an endless SSE stream.
        if (!response.body) return void res.end();
        const reader = response.body.getReader();
        res.once('close', () => void reader.cancel().catch(() => {}));
        for (;;) {
          const { done, value } = await reader.read();
          if (done || res.destroyed) break;
          res.write(value);
        }
        res.end();
      })
      .catch(() => {
        if (res.headersSent || res.destroyed) return res.destroy();
        res.writeHead(500, { [SHIM_HEADER]: 'handler-rejected', connection: 'close' });
        res.end();
      });
  };
}
