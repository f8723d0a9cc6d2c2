import { randomBytes } from 'node:crypto';
import { createLongPollLambdaHandler, type LambdaEvent } from '@trpc-longpoll/server/adapters/aws-lambda';
import superjson from 'superjson';
import { describe, expect, it, vi } from 'vitest';
import {
  containsStack,
  createLongPollClient,
  exchange,
  httpTestRouter,
  NODE_ADAPTERS,
  openRaw,
  recorder,
  startAdapter,
  useCleanup,
  useUnhandledRejections,
  waitFor,
  type AdapterOptions,
  type AdapterServer,
  type HttpTestRouter,
  type NodeAdapterKind,
  type RawConnection,
  type RawHttpAnswer,
} from '../src';
import { httpApiEvent, lambdaContext, restApiEvent } from './adapters/lambda-events';

/*
 * HTTP-level attacks over raw TCP against real servers on 127.0.0.1, each adapter
 * mounted as docs/adapters.md shows. After every attack the process keeps serving
 * (the real client still gets its events), nothing answered 500, the long-poll
 * handler's last-resort catch never ran, and no rejection went unhandled.
 */

const unhandled = useUnhandledRejections();
const cleanup = useCleanup();

/**
 * What docs/deploying.md should recommend for a Node server that takes polls directly,
 * with no proxy in front to cut slow clients. Node ≥ 18 semantics (checked below, at a
 * tenth of the scale):
 * - `headersTimeout`: the request head must be complete this long after its first byte (a
 *   new connection that sends nothing is cut this long after it opened). An idle keep-alive
 *   connection is not in a request, so it needs no relation to `keepAliveTimeout` (the old
 *   "headersTimeout > keepAliveTimeout" advice predates Node 18).
 * - `requestTimeout`: the whole request, head and body, must have arrived this long after its
 *   first byte. It stops counting once the body is in, so it never cuts a held poll. Above
 *   `bodyTimeoutMs` (10 s) so a poll's slow body gets the handler's own 408 first; it is what
 *   bounds bodies the handler does not read itself (tRPC's other routes, `express.json()`).
 *   Node requires `headersTimeout <= requestTimeout` when both are passed to `createServer`.
 * - `keepAliveTimeout`: above an AWS ALB's 60 s idle timeout (see deploying.md).
 * - `connectionsCheckingInterval`: how often Node enforces the first two (default 30 s, so a
 *   limit can fire up to 30 s late); only settable through `createServer`'s options.
 */
const RECOMMENDED_NODE_TIMEOUTS = {
  headersTimeout: 10_000,
  requestTimeout: 15_000,
  keepAliveTimeout: 65_000,
  connectionsCheckingInterval: 1_000,
} as const;

/** The same, at a tenth of the scale, and a hold (3 s) twice `requestTimeout`. */
const SCALED = {
  timeouts: {
    headersTimeout: RECOMMENDED_NODE_TIMEOUTS.headersTimeout / 10,
    requestTimeout: RECOMMENDED_NODE_TIMEOUTS.requestTimeout / 10,
    keepAliveTimeout: RECOMMENDED_NODE_TIMEOUTS.keepAliveTimeout / 10,
    connectionsCheckingInterval: RECOMMENDED_NODE_TIMEOUTS.connectionsCheckingInterval / 10,
  },
  holdMs: 3_000,
  bodyTimeoutMs: 1_000,
} as const;

const NODE_HOSTED = NODE_ADAPTERS.filter((a) => a.kind !== 'fetch');
const READS_ITS_OWN_BODY = NODE_ADAPTERS.filter((a) => a.kind !== 'express-json');

async function start(kind: NodeAdapterKind, options: AdapterOptions = {}): Promise<AdapterServer> {
  if (kind === 'express-json') {
    // Express's default error handler logs each body-parser refusal; its answers are what is tested.
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
    cleanup(() => spy.mockRestore());
  }
  const server = await startAdapter(kind, options);
  cleanup(server.close);
  return server;
}

function pollJson(client = randomBytes(8).toString('hex'), poll = 1, path = 'yields'): string {
  return JSON.stringify({ v: 1, client, poll, hold: 0, subscriptions: [{ key: 'a', path }] });
}

/** A request's bytes: request line, `headers` as given (null values left out), and `body` with its Content-Length. */
function rawRequest(line: string, headers: Record<string, string | null>, body = ''): string {
  const head = Object.entries(headers)
    .filter((entry): entry is [string, string] => entry[1] !== null)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  return `${line}\r\n${head}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

function rawPoll(headers: Record<string, string | null> = {}, body = pollJson()): string {
  return rawRequest('POST /trpc HTTP/1.1', { host: '127.0.0.1', 'content-type': 'application/json', ...headers }, body);
}

async function answerTo(port: number, bytes: string): Promise<RawHttpAnswer> {
  const outcome = await exchange(port, bytes, { deadlineMs: 10_000 });
  if (outcome.kind !== 'answer') throw new Error(`no answer: ${outcome.kind} ${JSON.stringify(outcome.received.toString('latin1'))}`);
  expect(containsStack(outcome.answer.body), outcome.answer.body).toBe(false);
  return outcome.answer;
}

/** The tRPC error code of a long-poll error answer. */
function errorCode(body: string): string {
  const { v, error } = JSON.parse(body) as { v: number; error: Parameters<typeof superjson.deserialize>[0] };
  expect(v).toBe(1);
  return superjson.deserialize<{ data: { code: string } }>(error).data.code;
}

/** A well-formed poll through `fetch`, as a page would send it. */
function fetchPoll(server: AdapterServer, body = pollJson()): Promise<Response> {
  return fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
}

/** What every attack ends with: the real client still gets events, nothing answered 500, no bug was reported. */
async function keepsServing(server: AdapterServer): Promise<void> {
  const client = createLongPollClient<HttpTestRouter>(server.url);
  const events = recorder();
  const sub = client.yields.subscribe(undefined, events.callbacks);
  try {
    await events.untilData(2, { ms: 10_000 });
  } finally {
    sub.unsubscribe();
  }
  expect(server.answers.filter((a) => a.status === 500)).toEqual([]);
  expect(server.errors.filter((e) => e.code === 'INTERNAL_SERVER_ERROR')).toEqual([]);
  expect(unhandled).toEqual([]);
}

/** Resolves `ms` after the call. */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether the server closes the connection within `ms`. */
async function closesWithin(conn: RawConnection, ms: number): Promise<boolean> {
  const result = await Promise.race([conn.closed, sleep(ms).then(() => null)]);
  return result !== null && result.byServer;
}

// ---------------------------------------------------------------------------

describe('an unparsable request target (`POST //[/`)', () => {
  it.each(NODE_ADAPTERS)('$name: a 4xx, never a 500, and the process keeps serving', async ({ kind }) => {
    const server = await start(kind);
    for (const target of ['//[/', '//[/trpc', 'http://[/trpc', '/trpc/[', '//[/?x=%zz']) {
      const answer = await answerTo(server.port, rawRequest(`POST ${target} HTTP/1.1`, { host: '127.0.0.1', 'content-type': 'application/json' }, pollJson()));
      expect(answer.status, `${target}: ${answer.body}`).toBeGreaterThanOrEqual(400);
      expect(answer.status, `${target}: ${answer.body}`).toBeLessThan(500);
    }
    // None of them was taken for a poll: `matches()` said no (and did not throw) and the fallback answered.
    expect(server.pollUrls).toEqual([]);
    await keepsServing(server);
  });

  it('plain node:http with the standalone fallback answers 400 from tRPC', async () => {
    const server = await start('node');
    const answer = await answerTo(server.port, rawRequest('POST //[/ HTTP/1.1', { host: '127.0.0.1', 'content-type': 'application/json' }, pollJson()));
    expect(answer.status).toBe(400);
    expect(answer.body).toContain('Invalid URL');
    await keepsServing(server);
  });
});

describe('an unparsable Host on a real poll (`Host: [`)', () => {
  it.each(NODE_HOSTED)('$name: served with a null URL for createContext', async ({ kind }) => {
    const server = await start(kind);
    const answer = await answerTo(server.port, rawPoll({ host: '[' }));
    expect(answer.status, answer.body).toBe(200);
    expect((JSON.parse(answer.body) as { results: { a: { run: string } } }).results.a.run).toEqual(expect.any(String));
    expect(server.pollUrls).toEqual([null]);
    await keepsServing(server);
  });

  it.each(NODE_HOSTED)('$name: other hostile Hosts get a 200 or a 4xx, never a 500', async ({ kind }) => {
    const server = await start(kind);
    for (const host of ['[::1', 'a b', '%', 'user:pw@host', 'x'.repeat(5_000), ' ', 'h\u00e9', '[::1]:99999']) {
      const answer = await answerTo(server.port, rawPoll({ host }));
      expect(answer.status === 200 || (answer.status >= 400 && answer.status < 500), `${host}: ${answer.status} ${answer.body}`).toBe(true);
    }
    await keepsServing(server);
  });

  it('AWS Lambda: an unparsable domain name is served with a null URL', async () => {
    const { router } = httpTestRouter();
    const urls: (URL | null)[] = [];
    const handler = createLongPollLambdaHandler({ router, createContext: ({ info }) => (urls.push(info.url), { url: info.url }) });
    cleanup(handler.close);
    for (const toEvent of [restApiEvent, httpApiEvent]) {
      const event = toEvent({ method: 'POST', url: '/trpc', headers: { 'content-type': 'application/json' }, body: pollJson() });
      event.requestContext.domainName = '[';
      expect((await handler(event as LambdaEvent, lambdaContext())).statusCode).toBe(200);
    }
    expect(urls).toEqual([null, null]);
  });
});

/** What a page on another site can send without a CORS preflight, and nothing at all. */
const SIMPLE_TYPES = ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', null] as const;
/** Content types that do not parse (Fastify refuses these itself, before the plugin's route runs). */
const MALFORMED_TYPES = [';', '/', 'json'] as const;

describe('polls that are not JSON (what a cross-site form or no-cors fetch sends)', () => {
  it.each(NODE_ADAPTERS)('$name: 415, and no procedure starts', async ({ kind }) => {
    const server = await start(kind);
    for (const type of [...SIMPLE_TYPES, ...MALFORMED_TYPES]) {
      const conn = await openRaw(server.port);
      await conn.write(rawPoll({ 'content-type': type }));
      const answer = await conn.answer;
      expect(answer.status, `${type}: ${answer.body}`).toBe(415);
      expect(errorCode(answer.body)).toBe('UNSUPPORTED_MEDIA_TYPE');
      if (kind !== 'fetch') {
        // The body was not read: the connection goes with the answer (a Fetch handler leaves that to its runtime).
        expect(answer.headers.connection).toBe('close');
        expect(await closesWithin(conn, 1_000)).toBe(true);
      }
      conn.destroy();
    }
    expect(server.stats.starts).toBe(0);
    expect(server.pollUrls).toEqual([]);
    await keepsServing(server);
  });

  it.each([
    { name: 'AWS Lambda, REST API', toEvent: restApiEvent },
    { name: 'AWS Lambda, HTTP API', toEvent: httpApiEvent },
  ])('$name: 415, and no procedure starts', async ({ toEvent }) => {
    const { router, stats } = httpTestRouter();
    const handler = createLongPollLambdaHandler({ router, endpoint: '/trpc', createContext: ({ info }) => ({ url: info.url }) });
    cleanup(handler.close);
    for (const type of SIMPLE_TYPES) {
      const event = toEvent({ method: 'POST', url: '/trpc', headers: type === null ? {} : { 'Content-Type': type }, body: pollJson() }) as LambdaEvent;
      expect(handler.matches(event)).toBe(true);
      const result = await handler(event, lambdaContext());
      expect(result.statusCode, String(type)).toBe(415);
      expect(errorCode(result.body!)).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
    expect(stats.starts).toBe(0);
    const good = toEvent({ method: 'POST', url: '/trpc', headers: { 'content-type': 'application/json' }, body: pollJson() }) as LambdaEvent;
    expect((await handler(good, lambdaContext())).statusCode).toBe(200);
    expect(stats.starts).toBe(1);
  });
});

describe('a slow body (slowloris)', () => {
  const slowHead = rawRequest('POST /trpc HTTP/1.1', { host: '127.0.0.1', 'content-type': 'application/json' }).replace('content-length: 0', 'content-length: 1000');

  /** Sends the head, then one byte a second, until the connection closes. */
  async function trickle(port: number): Promise<RawConnection> {
    const conn = await openRaw(port);
    await conn.write(slowHead);
    await conn.write('{');
    const timer = setInterval(() => void conn.write(' '), 1_000);
    void conn.closed.then(() => clearInterval(timer));
    cleanup(() => {
      clearInterval(timer);
      conn.destroy();
    });
    return conn;
  }

  it.each(READS_ITS_OWN_BODY)('$name: 408 at bodyTimeoutMs, and the connection is closed', async ({ kind }) => {
    const server = await start(kind, { bodyTimeoutMs: 1_000 });
    const conn = await trickle(server.port);
    const answer = await conn.answer;
    expect(answer.status).toBe(408);
    expect(errorCode(answer.body)).toBe('TIMEOUT');
    expect(answer.ms).toBeGreaterThanOrEqual(950);
    expect(answer.ms).toBeLessThan(2_500);
    if (kind !== 'fetch') {
      expect(answer.headers.connection).toBe('close');
      expect(await closesWithin(conn, 500)).toBe(true);
    }
    await keepsServing(server);
  });

  it.each(READS_ITS_OWN_BODY)('$name: slow bodies count against maxHeldPolls; polls are served again once they time out', async ({ kind }) => {
    const server = await start(kind, { bodyTimeoutMs: 1_000, maxHeldPolls: 3 });
    const slow = await Promise.all([trickle(server.port), trickle(server.port), trickle(server.port)]);
    await waitFor(() => server.received() === 3, 2_000, 'the three slow requests');
    await sleep(100);
    const refused = await fetchPoll(server);
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(errorCode(await refused.text())).toBe('SERVICE_UNAVAILABLE');

    const timedOut = await Promise.all(slow.map((conn) => conn.answer));
    expect(timedOut.map((a) => a.status)).toEqual([408, 408, 408]);
    const served = await fetchPoll(server);
    expect(served.status).toBe(200);
    await keepsServing(server);
  });

  it('Express after express.json(): the parser holds slow bodies, so only Node’s requestTimeout cuts them', async () => {
    // body-parser reads the body before the long-poll middleware runs, with no deadline of its own:
    // bodyTimeoutMs and maxHeldPolls never see it.
    const server = await start('express-json', {
      bodyTimeoutMs: 1_000,
      maxHeldPolls: 3,
      timeouts: { headersTimeout: 1_000, requestTimeout: 2_000, connectionsCheckingInterval: 100 },
    });
    const slow = await Promise.all([trickle(server.port), trickle(server.port), trickle(server.port)]);
    await waitFor(() => server.received() === 3, 2_000, 'the three slow requests');
    await sleep(100);
    expect((await fetchPoll(server)).status).toBe(200);

    const cut = await Promise.all(slow.map((conn) => conn.answer));
    for (const answer of cut) {
      // Node's own 408, at requestTimeout rather than bodyTimeoutMs.
      expect(answer.status).toBe(408);
      expect(answer.body).toBe('');
      expect(answer.ms).toBeGreaterThanOrEqual(1_900);
    }
    await keepsServing(server);
  });
});

describe('oversized bodies', () => {
  it.each(READS_ITS_OWN_BODY)('$name: a declared Content-Length over maxBodyBytes gets 413 at once, without the body being drained', async ({ kind }) => {
    const server = await start(kind);
    const conn = await openRaw(server.port);
    cleanup(() => conn.destroy());
    // 2 MiB announced, 16 KiB sent, and the rest never comes.
    await conn.write(rawPoll({}, '').replace('content-length: 0', `content-length: ${2 * 1024 * 1024}`) + 'x'.repeat(16 * 1024));
    const answer = await conn.answer;
    expect(answer.status).toBe(413);
    expect(errorCode(answer.body)).toBe('PAYLOAD_TOO_LARGE');
    expect(answer.ms).toBeLessThan(1_000);
    if (kind !== 'fetch') {
      expect(answer.headers.connection).toBe('close');
      expect(await closesWithin(conn, 500)).toBe(true);
    }
    await keepsServing(server);
  });

  it.each(READS_ITS_OWN_BODY)('$name: a chunked body that outgrows maxBodyBytes gets 413 and the connection is closed', async ({ kind }) => {
    const server = await start(kind, { maxBodyBytes: 64 * 1024 });
    const conn = await openRaw(server.port);
    cleanup(() => conn.destroy());
    await conn.write(
      rawRequest('POST /trpc HTTP/1.1', { host: '127.0.0.1', 'content-type': 'application/json', 'transfer-encoding': 'chunked' }).replace(
        'content-length: 0\r\n',
        '',
      ),
    );
    // 8 KiB chunks every 5 ms, without end.
    let sent = 0;
    const timer = setInterval(() => {
      sent += 8 * 1024;
      void conn.write(`2000\r\n${'x'.repeat(8 * 1024)}\r\n`);
    }, 5);
    cleanup(() => clearInterval(timer));
    const answer = await conn.answer;
    expect(answer.status).toBe(413);
    expect(errorCode(answer.body)).toBe('PAYLOAD_TOO_LARGE');
    expect(sent).toBeGreaterThan(64 * 1024);
    if (kind !== 'fetch') {
      expect(answer.headers.connection).toBe('close');
      expect(await closesWithin(conn, 500)).toBe(true);
    }
    clearInterval(timer);
    await keepsServing(server);
  });

  it('Express after express.json(): Express drains an oversized body before its own 413, so requestTimeout bounds it', async () => {
    const server = await start('express-json', { timeouts: { headersTimeout: 1_000, requestTimeout: 2_000, connectionsCheckingInterval: 100 } });
    const conn = await openRaw(server.port);
    cleanup(() => conn.destroy());
    await conn.write(rawPoll({}, '').replace('content-length: 0', `content-length: ${2 * 1024 * 1024}`) + 'x'.repeat(16 * 1024));
    const answer = await conn.answer;
    // body-parser refuses at once (its limit is 100 kB), but Express's final handler waits for the
    // whole body before answering; the 2 MiB never come, so Node's requestTimeout answers instead.
    expect(answer.status).toBe(408);
    expect(answer.ms).toBeGreaterThanOrEqual(1_900);
    expect(await closesWithin(conn, 500)).toBe(true);
    await keepsServing(server);
  });
});

describe('recommended Node server timeouts (at a tenth of the scale)', () => {
  it('are valid createServer options together', async () => {
    const { createServer } = await import('node:http');
    const server = createServer(RECOMMENDED_NODE_TIMEOUTS);
    expect(server.headersTimeout).toBe(10_000);
    expect(server.requestTimeout).toBe(15_000);
    expect(server.keepAliveTimeout).toBe(65_000);
    // What the docs showed before: headersTimeout above keepAliveTimeout is refused beside this requestTimeout.
    expect(() => createServer({ requestTimeout: 15_000, headersTimeout: 66_000 })).toThrow(/headersTimeout/);
  });

  it.each(NODE_HOSTED.filter((a) => a.kind !== 'express-json'))(
    '$name: a held poll outlives requestTimeout; a head that never ends, or never starts, is cut at headersTimeout; an idle keep-alive connection outlives it',
    async ({ kind }) => {
      const server = await start(kind, SCALED);
      const { headersTimeout, requestTimeout } = SCALED.timeouts;

      // 1. The real client: its second poll is held 3 s (> requestTimeout 1.5 s) and answered 200, with no retry.
      const client = createLongPollClient<HttpTestRouter>(server.url);
      const events = recorder();
      const sub = client.waits.subscribe(undefined, events.callbacks);
      cleanup(() => sub.unsubscribe());

      // 2. A raw poll held the same way, on a connection that then idles past headersTimeout and polls again.
      const rawClient = randomBytes(8).toString('hex');
      const conn = await openRaw(server.port);
      cleanup(() => conn.destroy());
      await conn.write(rawPoll({}, pollJson(rawClient, 1, 'waits')));
      const first = await conn.answer;
      const run = (JSON.parse(first.body) as { results: { a: { run: string } } }).results.a.run;

      // 3. A request head that never finishes.
      const stuck = await openRaw(server.port);
      cleanup(() => stuck.destroy());
      await stuck.write('POST /trpc HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n');
      // 4. A head that trickles in, a line every 200 ms: headersTimeout is a total, not an idle timeout.
      const trickling = await openRaw(server.port);
      cleanup(() => trickling.destroy());
      await trickling.write('POST /trpc HTTP/1.1\r\n');
      const timer = setInterval(() => void trickling.write('x-filler: 1\r\n'), 200);
      cleanup(() => clearInterval(timer));

      // 5. A connection that never sends a byte.
      const silent = await openRaw(server.port);
      cleanup(() => silent.destroy());
      // 6. A slow body on one of tRPC's own routes, which has no deadline of its own: requestTimeout is live here.
      const slowMutation = await openRaw(server.port);
      cleanup(() => slowMutation.destroy());
      await slowMutation.write(rawRequest('POST /trpc/echo HTTP/1.1', { host: '127.0.0.1', 'content-type': 'application/json' }).replace('content-length: 0', 'content-length: 100') + '{');

      const second = await openRaw(server.port);
      cleanup(() => second.destroy());
      await second.write(
        rawPoll({}, JSON.stringify({ v: 1, client: rawClient, poll: 2, subscriptions: [{ key: 'a', path: 'waits', cursor: { run, seq: 0 } }] })),
      );

      const [cut, trickled, silenced] = await Promise.all([stuck.answer, trickling.answer, silent.answer]);
      for (const answer of [cut, trickled, silenced]) {
        // Node's own 408 (Fastify words it as JSON through its clientError handler).
        expect(answer.status).toBe(408);
        expect(containsStack(answer.body)).toBe(false);
        expect(answer.ms).toBeGreaterThanOrEqual(headersTimeout - 50);
        expect(answer.ms).toBeLessThan(requestTimeout);
      }
      expect(await closesWithin(stuck, 500)).toBe(true);
      const slowCut = await slowMutation.answer;
      expect(slowCut.status).toBe(408);
      expect(slowCut.ms).toBeGreaterThanOrEqual(requestTimeout - 50);
      expect(slowCut.ms).toBeLessThan(SCALED.holdMs);

      const held = await second.answer;
      expect(held.status).toBe(200);
      expect(JSON.parse(held.body)).toEqual({ v: 1, results: {} });
      expect(held.ms).toBeGreaterThanOrEqual(SCALED.holdMs - 50);
      expect(second.isClosed()).toBe(false);

      // The first connection has idled since its answer, longer than headersTimeout: still open, and it serves a poll.
      await waitFor(() => conn.elapsed() - first.ms > 2 * headersTimeout, 5_000, 'the connection to idle');
      expect(conn.isClosed()).toBe(false);
      const nextOnSameConnection = conn.nextAnswer();
      await conn.write(rawPoll({}, pollJson(rawClient, 3, 'waits')));
      const again = await nextOnSameConnection;
      expect(again.status).toBe(200);

      // The real client's held polls were answered 200 after the hold, and it never saw an error.
      await waitFor(() => server.answers.some((a) => a.status === 200 && a.ms >= SCALED.holdMs - 50 && a.url.includes('trpc')), 5_000, 'a held answer');
      expect(events.failures()).toEqual([]);
      expect(events.count('started')).toBeGreaterThan(0);
      sub.unsubscribe();
      await keepsServing(server);
    },
    20_000,
  );
});
