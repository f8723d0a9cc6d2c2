import { awsLambdaRequestHandler } from '@trpc/server/adapters/aws-lambda';
import { createLongPollHandler } from '@trpc-longpoll/server';
import { createLongPollLambdaHandler, type LambdaEvent } from '@trpc-longpoll/server/adapters/aws-lambda';
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2 } from 'aws-lambda';
import fc from 'fast-check';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  containsStack,
  exchange,
  httpTestRouter,
  NODE_ADAPTERS,
  pool,
  SHIM_HEADER,
  startAdapter,
  useCleanup,
  useUnhandledRejections,
  waitFor,
  type NodeAdapterKind,
  type RawHttpAnswer,
  type RawOutcome,
} from '../src';
import { httpApiEvent, lambdaContext, restApiEvent } from './adapters/lambda-events';

/*
 * HTTP-level fuzz: malformed requests of every kind — request lines, targets, Host,
 * framing, encodings, methods, bodies — against each adapter as the docs mount it.
 * Node-hosted adapters get raw bytes over TCP, so the request line reaches Node's
 * own parser; Lambda handlers get events as API Gateway builds them. Whatever
 * comes in: never a 500, never a stack, never a crash or an unhandled rejection,
 * and the server still answers a good poll afterwards.
 */

const RUNS = 2_000;
const CONCURRENCY = 16;
/** Long enough for every server-side limit below to have fired. */
const DEADLINE_MS = 4_000;

/** Small limits, so oversized and slow requests are cheap, in the shape docs/deploying.md recommends. */
const LONG_POLL_OPTIONS = { holdMs: 100, idleTimeoutMs: 300, bodyTimeoutMs: 400, maxBodyBytes: 8 * 1024, maxBufferedEvents: 20 };
const NODE_TIMEOUTS = { headersTimeout: 500, requestTimeout: 1_000, keepAliveTimeout: 1_000, connectionsCheckingInterval: 100 };

const unhandled = useUnhandledRejections();
const cleanup = useCleanup();

// ---------------------------------------------------------------------------
// What a request is made of.

/** `arb` in `percent` % of cases, else undefined. */
const sometimes = <T>(arb: fc.Arbitrary<T>, percent = 50): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: 100 - percent, arbitrary: fc.constant(undefined) }, { weight: percent, arbitrary: arb });

/** Printable header text, any text, and the classic smuggling shapes. */
const headerValue = fc.oneof(
  { weight: 12, arbitrary: fc.stringMatching(/^[\x20-\x7e]{0,40}$/) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('a\r\nx-injected: 1', 'a\n b', 'a\r b', '\u0000', '\t', ' padded ', '', 'x'.repeat(20_000), '\u00ff\u00fe'),
  },
);

const method = fc.oneof(
  { weight: 30, arbitrary: fc.constant('POST') },
  {
    weight: 8,
    arbitrary: fc.constantFrom('GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'post', 'Post', 'TRACE', 'CONNECT', 'PRI', 'QUERY', 'PROPFIND', 'M-SEARCH', 'PURGE'),
  },
  { weight: 2, arbitrary: fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
);

const target = fc.oneof(
  { weight: 30, arbitrary: fc.constant('/trpc') },
  {
    weight: 10,
    arbitrary: fc.constantFrom(
      '/trpc/', '/trpc?x=1', '/trpc?batch=1', '//trpc', '/TRPC', '/trpc;x', '/x/../trpc', '/trpc/..', '/trpc%2f', '/trpc#frag', '/trpc?%zz',
      '/trpc/hello', '/trpc/echo?batch=1', '/trpc/yields', '/trpc/waits', '/trpc/%', '/trpc/[', '//[/', '/[', '//', '/', '*', '',
      'http://127.0.0.1/trpc', 'http://[/trpc', 'http://a b/trpc', 'https://x/trpc', 'http:/trpc', '/trpc\t', '/\u0000',
      `/trpc?${'a'.repeat(9_000)}`, `/${'x'.repeat(20_000)}`,
    ),
  },
  { weight: 2, arbitrary: fc.webPath() },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
);

const version = fc.oneof(
  { weight: 30, arbitrary: fc.constant('HTTP/1.1') },
  { weight: 4, arbitrary: fc.constant('HTTP/1.0') },
  { weight: 2, arbitrary: fc.constantFrom('HTTP/2.0', 'HTTP/1.2', 'HTTP/0.9', 'HTTP/11', 'http/1.1', 'HTTP/1.1 x', '', 'HTTP/') },
);

const host = fc.oneof(
  { weight: 12, arbitrary: fc.constant('127.0.0.1') },
  {
    weight: 4,
    arbitrary: fc.constantFrom('[', '', ' ', '[::1]', '[::1', 'a b', 'evil.example:99999', 'localhost:0', '%', '@', 'user@host', 'h\u00e9', 'x'.repeat(3_000), 'a/b', 'a?b', 'a#b'),
  },
  { weight: 1, arbitrary: headerValue },
);

const contentType = fc.oneof(
  { weight: 14, arbitrary: fc.constant('application/json') },
  { weight: 2, arbitrary: fc.constant('application/json; charset=utf-8') },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'APPLICATION/JSON', 'application/json;', ' application/json ', 'application/json; charset=latin1', 'application/json, text/plain',
      'application/jsonx', 'application/json+x', 'text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=xyz', 'application/csp-report', '', ';', '*/*', 'application/json; boundary="', 'application/json\u0000',
    ),
  },
  { weight: 1, arbitrary: headerValue },
);

const subscription = fc.record(
  {
    key: fc.constantFrom('a', 'b', 'c'),
    path: fc.constantFrom('waits', 'yields', 'hello', 'echo', 'nope', 'yields.x', ''),
    input: sometimes(fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.record({ json: fc.jsonValue({ maxDepth: 2 }) })), 40),
    cursor: sometimes(
      fc.record({ run: fc.string({ maxLength: 22 }), seq: fc.nat(5), lastEventId: sometimes(fc.nat(9).map(String)) }, { requiredKeys: ['run', 'seq'] }),
      40,
    ),
  },
  { requiredKeys: ['key', 'path'] },
);

const poll = fc.record(
  {
    v: fc.oneof({ weight: 10, arbitrary: fc.constant(1) }, fc.jsonValue({ maxDepth: 0 })),
    client: fc.constantFrom('c1', 'c2', 'c3'),
    poll: fc.nat(100),
    hold: sometimes(fc.nat(100), 70),
    subscriptions: fc.uniqueArray(subscription, { maxLength: 3, selector: (sub) => sub.key }),
  },
  { requiredKeys: ['v', 'client', 'poll', 'subscriptions'] },
);

const body: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 10, arbitrary: poll.map((p) => Buffer.from(JSON.stringify(p))) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => Buffer.from(JSON.stringify(v) ?? '')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 50 }).map((s) => Buffer.from(s)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      Buffer.alloc(0),
      Buffer.from('{'),
      Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
      Buffer.from('\ufeff{"v":1,"client":"c1","poll":1,"subscriptions":[]}'),
      Buffer.from('['.repeat(5_000)),
      Buffer.from(`"${'x'.repeat(9_000)}"`),
      Buffer.from(JSON.stringify({ v: 1, client: 'c1', poll: 1, subscriptions: Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, path: 'waits' })) })),
    ),
  },
);

/** How the body is delimited: right, wrong, or both at once. */
const framing = fc.oneof(
  { weight: 14, arbitrary: fc.constant({ kind: 'length' as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('chunked' as const), sizes: fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('length-off' as const), by: fc.integer({ min: -20, max: 20 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('length-bad' as const),
      value: fc.constantFrom('-1', 'abc', '1e3', '0x10', ' 5', '5 ', '+5', '99999999999999999999999', '1.5', '', '5, 5', '5,6'),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('chunked-bad' as const),
      shape: fc.constantFrom('bad-size', 'no-crlf', 'no-terminator', 'extension', 'too-long', 'negative', 'trailer', 'huge-size', 'lf-only'),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'both' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('te-odd' as const),
      value: fc.constantFrom('gzip, chunked', 'chunked, gzip', 'identity', 'Chunked', 'chunked ', 'chunked, chunked', 'x', ''),
    }),
  },
);

const extraHeader = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.tuple(fc.constant('content-encoding'), fc.oneof(fc.constantFrom('gzip', 'br', 'deflate', 'identity', 'zstd', 'gzip, gzip', 'x'), headerValue)),
  },
  { weight: 2, arbitrary: fc.tuple(fc.constant('expect'), fc.constantFrom('100-continue', '100-Continue', 'nope', '')) },
  { weight: 2, arbitrary: fc.tuple(fc.constant('connection'), fc.constantFrom('close', 'keep-alive', 'upgrade', 'close, upgrade', 'te', 'x')) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('upgrade'), fc.constantFrom('websocket', 'h2c', 'x')) },
  {
    weight: 3,
    arbitrary: fc.tuple(
      fc.constantFrom('te', 'trailer', 'accept', 'accept-encoding', 'cookie', 'authorization', 'origin', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'trpc-accept', 'keep-alive', 'x-http-method-override', 'range', 'content-length', 'transfer-encoding', 'host', 'content-type'),
      headerValue,
    ),
  },
  { weight: 2, arbitrary: fc.tuple(fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}$/), headerValue) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(' host', 'host ', 'x y', '', ':authority', 'x\u00ff', 'x\u0000', 'a:b'), headerValue) },
);

/** How the bytes go out: at once, in two writes, cut short (the rest never comes), or with a half-close after them. */
const delivery = fc.oneof(
  { weight: 24, arbitrary: fc.constant({ kind: 'whole' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('split' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cut' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'fin' as const }) },
);

const rawRequest = fc.record({
  method,
  target,
  version,
  host: sometimes(host, 95),
  contentType: sometimes(contentType, 92),
  secondContentType: sometimes(contentType, 4),
  headers: fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 2, arbitrary: fc.array(extraHeader, { minLength: 1, maxLength: 3 }) }),
  manyHeaders: fc.oneof({ weight: 40, arbitrary: fc.constant(0) }, fc.constantFrom(100, 2_500)),
  body,
  framing,
  eol: fc.oneof({ weight: 30, arbitrary: fc.constant('\r\n') }, fc.constant('\n')),
  delivery,
});
type RawRequest = typeof rawRequest extends fc.Arbitrary<infer T> ? T : never;

function chunked(data: Buffer, sizes: number[]): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (const size of sizes) {
    if (at >= data.length) break;
    const chunk = data.subarray(at, at + size);
    parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
    at += chunk.length;
  }
  if (at < data.length) parts.push(Buffer.from(`${(data.length - at).toString(16)}\r\n`), data.subarray(at), Buffer.from('\r\n'));
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

function badlyChunked(data: Buffer, shape: string): Buffer {
  const hex = data.length.toString(16);
  switch (shape) {
    case 'bad-size':
      return Buffer.concat([Buffer.from('zz\r\n'), data, Buffer.from('\r\n0\r\n\r\n')]);
    case 'no-crlf':
      return Buffer.concat([Buffer.from(`${hex}\r\n`), data, Buffer.from('0\r\n\r\n')]);
    case 'no-terminator':
      return Buffer.concat([Buffer.from(`${hex}\r\n`), data, Buffer.from('\r\n')]);
    case 'extension':
      return Buffer.concat([Buffer.from(`${hex};name=value;x="y"\r\n`), data, Buffer.from('\r\n0\r\n\r\n')]);
    case 'too-long':
      return Buffer.concat([Buffer.from(`${(data.length + 10).toString(16)}\r\n`), data, Buffer.from('\r\n0\r\n\r\n')]);
    case 'negative':
      return Buffer.concat([Buffer.from('-5\r\n'), data, Buffer.from('\r\n0\r\n\r\n')]);
    case 'trailer':
      return Buffer.concat([Buffer.from(`${hex}\r\n`), data, Buffer.from('\r\n0\r\nx-trailer: 1\r\ncontent-length: 5\r\n\r\n')]);
    case 'huge-size':
      return Buffer.concat([Buffer.from('ffffffffffffffffff\r\n'), data, Buffer.from('\r\n0\r\n\r\n')]);
    default:
      return Buffer.concat([Buffer.from(`${hex}\n`), data, Buffer.from('\n0\n\n')]);
  }
}

/** The request's bytes, and how to send them. */
function encode(request: RawRequest): { bytes: Buffer; head: boolean; fin: boolean; splitAt?: number } {
  const { eol } = request;
  const headers: [string, string][] = [];
  if (request.host !== undefined) headers.push(['Host', request.host]);
  if (request.contentType !== undefined) headers.push(['Content-Type', request.contentType]);
  if (request.secondContentType !== undefined) headers.push(['content-type', request.secondContentType]);
  headers.push(...request.headers);
  for (let i = 0; i < request.manyHeaders; i++) headers.push([`x-h${i}`, 'v']);
  let payload = request.body;
  const f = request.framing;
  if (f.kind === 'length') headers.push(['Content-Length', String(payload.length)]);
  else if (f.kind === 'length-off') headers.push(['Content-Length', String(Math.max(0, payload.length + f.by))]);
  else if (f.kind === 'length-bad') headers.push(['Content-Length', f.value]);
  else if (f.kind === 'chunked') {
    headers.push(['Transfer-Encoding', 'chunked']);
    payload = chunked(payload, f.sizes);
  } else if (f.kind === 'chunked-bad') {
    headers.push(['Transfer-Encoding', 'chunked']);
    payload = badlyChunked(payload, f.shape);
  } else if (f.kind === 'both') {
    headers.push(['Content-Length', String(payload.length)], ['Transfer-Encoding', 'chunked']);
    payload = chunked(payload, []);
  } else if (f.kind === 'te-odd') {
    headers.push(['Transfer-Encoding', f.value]);
  }
  const head = `${request.method} ${request.target} ${request.version}${eol}${headers.map(([name, value]) => `${name}: ${value}${eol}`).join('')}${eol}`;
  const bytes = Buffer.concat([Buffer.from(head), payload]);
  const d = request.delivery;
  if (d.kind === 'cut') return { bytes: bytes.subarray(0, Math.floor(bytes.length * d.at)), head: request.method === 'HEAD', fin: false };
  if (d.kind === 'split') return { bytes, head: request.method === 'HEAD', fin: false, splitAt: Math.floor(bytes.length * d.at) };
  return { bytes, head: request.method === 'HEAD', fin: d.kind === 'fin' };
}

// ---------------------------------------------------------------------------
// What every answer must be.

/** Whether the long-poll handler, mounted as the docs show, takes this request (a POST to the endpoint itself). */
function isPollRoute(method: string, target: string, caseInsensitive: boolean): boolean {
  let pathname: string;
  try {
    pathname = new URL(target, 'http://x').pathname;
  } catch {
    return false;
  }
  const path = pathname.replace(/^\/+|\/+$/g, '');
  return method === 'POST' && (caseInsensitive ? path.toLowerCase() : path) === 'trpc';
}

/**
 * Why an outcome breaks the rules, or null. A 500 is the long-poll handler's failure when it
 * is in the protocol (`{"v":1,…`) or answers a poll route. Any other 500 comes from tRPC's own
 * adapter, which the docs mount behind the long-poll handler for everything that is not a poll:
 * `upstream` — counted and reported, as it is not this project's code.
 */
function verdictOf(outcome: RawOutcome, route: { method: string; target: string; caseInsensitive: boolean } | null): { fail: string } | { upstream: string } | null {
  if (outcome.kind === 'deadline') return { fail: `neither an answer nor a close within ${DEADLINE_MS} ms` };
  if (outcome.kind === 'closed') return null; // Node's parser refused the bytes and closed: allowed.
  const { status, headers, body } = outcome.answer;
  if (headers[SHIM_HEADER] === 'handler-rejected') return { fail: 'the fetch handler rejected' };
  if (containsStack(body)) return { fail: `a stack in the answer: ${body.slice(0, 300)}` };
  if (status >= 500 && !(status === 503 && headers['retry-after'])) {
    const ours = body.startsWith('{"v":1') || route === null || isPollRoute(route.method, route.target, route.caseInsensitive);
    return ours ? { fail: `${status}: ${body.slice(0, 200)}` } : { upstream: `${status} from tRPC's fallback: ${body.slice(0, 160)}` };
  }
  return null;
}

/**
 * Who wrote an answer, for the coverage checks: the long-poll handler answers in its
 * protocol (`{"v":1,…`); Node's own refusals (400, 408, 431, 417…) have no body.
 */
function whoAnswered(answer: RawHttpAnswer): 'long-poll' | 'bare' | 'other' {
  if (answer.body.startsWith('{"v":1,')) return 'long-poll';
  return answer.body === '' ? 'bare' : 'other';
}

interface Tally {
  /** `long-poll 200`, `other 404`, `closed`… */
  counts: Map<string, number>;
  failures: { why: string; request: string }[];
  /** 500s tRPC's own adapter gave, one line per kind (see `verdictOf`). */
  upstream: Set<string>;
}

function tally(): Tally {
  return { counts: new Map(), failures: [], upstream: new Set() };
}

function count(t: Tally, key: string): void {
  t.counts.set(key, (t.counts.get(key) ?? 0) + 1);
}

function describeTally(t: Tally): string {
  return [...t.counts].sort(([a], [b]) => a.localeCompare(b)).map(([key, n]) => `${key}: ${n}`).join(', ');
}

/** A well-formed poll, as the client sends it: the server must still answer it. */
async function answersGoodPoll(url: string): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ v: 1, client: 'after-the-fuzz', poll: 1, hold: 0, subscriptions: [{ key: 'a', path: 'yields' }] }),
  });
  expect(res.status).toBe(200);
  const json = (await res.json()) as { results: { a: { run: string } } };
  expect(json.results.a.run).toEqual(expect.any(String));
}

const results: string[] = [];
afterAll(() => {
  if (process.env.HTTP_FUZZ_REPORT) process.stdout.write(`${results.join('\n')}\n`);
});

// ---------------------------------------------------------------------------

describe.each(NODE_ADAPTERS)('HTTP fuzz over TCP: $name', ({ kind }: { kind: NodeAdapterKind }) => {
  it(`${RUNS} malformed requests: never a 500 or a stack, and the server keeps serving`, async () => {
    // Express's default error handler logs every body-parser refusal; the answers are what is tested.
    if (kind === 'express-json') vi.spyOn(console, 'error').mockImplementation(() => {});
    cleanup(() => vi.restoreAllMocks());
    const server = await startAdapter(kind, { ...LONG_POLL_OPTIONS, timeouts: NODE_TIMEOUTS });
    cleanup(server.close);
    const t = tally();
    const slots = pool(CONCURRENCY);
    const started = Date.now();

    await fc.assert(
      fc.asyncProperty(rawRequest, async (request) => {
        const { bytes, head, fin, splitAt } = encode(request);
        await slots.run(async () => {
          const outcome = await exchange(server.port, bytes, { deadlineMs: DEADLINE_MS, head, fin, ...(splitAt !== undefined ? { splitAt } : {}) });
          // Express matches its mount path case-insensitively.
          const verdict = verdictOf(outcome, { ...request, caseInsensitive: kind.startsWith('express') });
          if (verdict && 'upstream' in verdict) {
            count(t, 'upstream 500');
            t.upstream.add(`${request.method} ${JSON.stringify(request.target.slice(0, 40))} host ${JSON.stringify(request.host?.slice(0, 40))}: ${verdict.upstream}`);
            return;
          }
          count(t, outcome.kind === 'answer' ? `${whoAnswered(outcome.answer)} ${outcome.answer.status}` : outcome.kind);
          if (verdict) t.failures.push({ why: verdict.fail, request: JSON.stringify(bytes.toString('latin1').slice(0, 600)) });
        });
      }),
      { numRuns: RUNS },
    );
    await slots.drain();
    expect(slots.errors).toEqual([]);
    const ms = Date.now() - started;
    results.push(`${kind}: ${ms} ms; ${describeTally(t)}`, ...[...t.upstream].slice(0, 12).map((line) => `  upstream: ${line}`));

    expect(t.failures.slice(0, 5)).toEqual([]);
    await answersGoodPoll(server.url);
    // The long-poll handler's last-resort catch never ran.
    expect(server.errors.filter((e) => e.by === 'long-poll' && e.code === 'INTERNAL_SERVER_ERROR')).toEqual([]);
    // The fuzz reached past the first checks: polls were served and refused for each reason.
    for (const status of [200, 400, 415]) expect(t.counts.get(`long-poll ${status}`) ?? 0, `long-poll ${status}`).toBeGreaterThan(20);
    // (405 never comes from the long-poll handler here: as mounted, it passes what is not a POST on.)
    if (kind !== 'express-json') {
      for (const status of [408, 413]) expect(t.counts.get(`long-poll ${status}`) ?? 0, `long-poll ${status}`).toBeGreaterThan(0);
    }
    // Nothing keeps running once the fuzz's clients are gone.
    await waitFor(() => server.stats.live === 0, 5_000, 'every procedure to end');
    expect(unhandled).toEqual([]);
  }, 90_000);
});

// ---------------------------------------------------------------------------
// The fetch handler, handed Fetch `Request`s directly (what Bun, Deno or a Worker would build).

const fetchRequest = fc.record({
  method: fc.oneof({ weight: 10, arbitrary: fc.constant('POST') }, fc.constantFrom('GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'post', 'QUERY', 'X-Y')),
  url: fc.oneof(
    { weight: 10, arbitrary: fc.constant('http://h/trpc') },
    fc.constantFrom('http://h/trpc/', 'http://h//trpc', 'http://h/trpc?x=%zz', 'http://h/trpc/hello', 'https://h:1/trpc#x', 'http://[::1]/trpc', 'http://h/%5B'),
    fc.webUrl(),
  ),
  contentType: sometimes(contentType, 92),
  headers: fc.array(extraHeader, { maxLength: 3 }),
  body: sometimes(body, 92),
});

describe('HTTP fuzz: fetch handler called with Request objects', () => {
  it(`${RUNS} hostile Requests: never a 500, a stack or a rejection`, async () => {
    const { router, stats } = httpTestRouter();
    const errors: { code: string }[] = [];
    const handler = createLongPollHandler({
      router,
      ...LONG_POLL_OPTIONS,
      endpoint: '/trpc',
      createContext: ({ info }) => ({ url: info.url }),
      onError: ({ error }) => errors.push({ code: error.code }),
    });
    cleanup(handler.close);
    const t = tally();
    const slots = pool(CONCURRENCY);
    await fc.assert(
      fc.asyncProperty(fetchRequest, async (r) => {
        const headers = new Headers();
        for (const [name, value] of [...(r.contentType !== undefined ? [['content-type', r.contentType] as const] : []), ...r.headers]) {
          try {
            headers.append(name, value);
          } catch {
            // Not a header a Request can carry: no runtime would hand it over.
          }
        }
        let request: Request;
        try {
          const withBody = r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD';
          request = new Request(r.url, { method: r.method, headers, ...(withBody ? { body: new Uint8Array(r.body!) } : {}) });
        } catch {
          count(t, 'not a Request');
          return;
        }
        await slots.run(async () => {
          try {
            handler.matches(request);
          } catch (cause) {
            t.failures.push({ why: `matches() threw: ${String(cause)}`, request: `${r.method} ${r.url}` });
          }
          let response: Response;
          try {
            response = await handler(request);
          } catch (cause) {
            t.failures.push({ why: `rejected: ${String(cause)}`, request: `${r.method} ${r.url}` });
            return;
          }
          const text = await response.text();
          count(t, `long-poll ${response.status}`);
          const verdict = verdictOf({ kind: 'answer', answer: { status: response.status, reason: '', headers: Object.fromEntries(response.headers), body: text, ms: 0 } }, null);
          if (verdict) t.failures.push({ why: 'fail' in verdict ? verdict.fail : verdict.upstream, request: `${r.method} ${r.url}` });
        });
      }),
      { numRuns: RUNS },
    );
    await slots.drain();
    expect(slots.errors).toEqual([]);
    results.push(`fetch (Request): ${describeTally(t)}`);
    expect(t.failures.slice(0, 5)).toEqual([]);
    expect(errors.filter((e) => e.code === 'INTERNAL_SERVER_ERROR')).toEqual([]);
    for (const status of [200, 400, 405, 415]) expect(t.counts.get(`long-poll ${status}`) ?? 0, `long-poll ${status}`).toBeGreaterThan(20);
    const good = await handler(
      new Request('http://h/trpc', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ v: 1, client: 'after-the-fuzz', poll: 1, hold: 0, subscriptions: [{ key: 'a', path: 'yields' }] }),
      }),
    );
    expect(good.status).toBe(200);
    await waitFor(() => stats.live <= 1, 5_000, 'the fuzz’s procedures to end');
    expect(unhandled).toEqual([]);
  }, 60_000);
});

// ---------------------------------------------------------------------------
// AWS Lambda: events as API Gateway builds them, with what a client controls made hostile.

const lambdaHeaders = fc
  .record({
    contentType: sometimes(contentType, 92),
    host: sometimes(host, 75),
    contentLength: sometimes(fc.constantFrom('0', '5', '-1', 'abc', '99999999999999999999', '1e9', ''), 20),
    extra: fc.array(fc.tuple(fc.oneof(fc.constantFrom('Content-Type', 'content-encoding', 'transfer-encoding', 'x-forwarded-for', 'cookie'), fc.string({ maxLength: 10 })), headerValue), { maxLength: 3 }),
  })
  .map(({ contentType: type, host: h, contentLength, extra }) => {
    const headers: Record<string, string> = {};
    if (type !== undefined) headers['content-type'] = type;
    if (h !== undefined) headers['Host'] = h;
    if (contentLength !== undefined) headers['Content-Length'] = contentLength;
    for (const [name, value] of extra) headers[name] = value;
    return headers;
  });

const lambdaRequest = fc.record({
  method: fc.oneof({ weight: 10, arbitrary: fc.constant('POST') }, fc.constantFrom('GET', 'HEAD', 'PUT', 'OPTIONS', 'post', ''), fc.string({ maxLength: 8 })),
  path: fc.oneof(
    { weight: 10, arbitrary: fc.constant('/trpc') },
    fc.constantFrom('/trpc/', '//trpc', '/trpc/hello', '/', '', '//[/', '/[', '/trpc/%', '/prod/trpc', 'trpc'),
    fc.string({ unit: 'binary', maxLength: 20 }),
  ),
  query: sometimes(fc.oneof(fc.constantFrom('x=1', '%zz', 'a=%', '#', '&&', '=', 'a=b&a=c'), fc.string({ maxLength: 12 })), 30),
  headers: lambdaHeaders,
  headersNull: fc.oneof({ weight: 20, arbitrary: fc.constant(false) }, fc.constant(true)),
  body: fc.oneof({ weight: 10, arbitrary: body.map((b) => b.toString('utf8')) }, fc.constant(null), fc.string({ maxLength: 40 })),
  base64: fc.oneof(
    { weight: 4, arbitrary: fc.constant('as-sent' as const) },
    fc.constant('encoded' as const),
    fc.constant('flag-only' as const),
    fc.constant('invalid' as const),
  ),
  domainName: sometimes(host, 30),
  stage: sometimes(fc.constantFrom('prod', '', '$default', '[', 'a/b'), 50),
});
type LambdaRequest = typeof lambdaRequest extends fc.Arbitrary<infer T> ? T : never;

function eventBody(r: LambdaRequest): { body: string | null; isBase64Encoded: boolean } {
  if (r.body === null) return { body: null, isBase64Encoded: r.base64 === 'flag-only' };
  switch (r.base64) {
    case 'encoded':
      return { body: Buffer.from(r.body).toString('base64'), isBase64Encoded: true };
    case 'flag-only':
      return { body: r.body, isBase64Encoded: true };
    case 'invalid':
      return { body: '***not base64***', isBase64Encoded: true };
    default:
      return { body: r.body, isBase64Encoded: false };
  }
}

function restEvent(r: LambdaRequest): APIGatewayProxyEvent {
  const event = restApiEvent({ method: 'POST', url: '/trpc', headers: {}, body: null });
  const { body: b, isBase64Encoded } = eventBody(r);
  const query = r.query === undefined ? null : Object.fromEntries(new URLSearchParams(r.query));
  return {
    ...event,
    httpMethod: r.method,
    path: r.path,
    headers: r.headersNull ? (null as never) : r.headers,
    multiValueHeaders: r.headersNull ? (null as never) : Object.fromEntries(Object.entries(r.headers).map(([name, value]) => [name, [value]])),
    queryStringParameters: query,
    multiValueQueryStringParameters: query && Object.fromEntries(Object.entries(query).map(([name, value]) => [name, [value]])),
    body: b,
    isBase64Encoded,
    requestContext: {
      ...event.requestContext,
      httpMethod: r.method,
      ...(r.domainName !== undefined ? { domainName: r.domainName } : {}),
      ...(r.stage !== undefined ? { stage: r.stage } : {}),
    },
  };
}

function httpEvent(r: LambdaRequest): APIGatewayProxyEventV2 {
  const event = httpApiEvent({ method: 'POST', url: '/trpc', headers: {}, body: null });
  const { body: b, isBase64Encoded } = eventBody(r);
  const headers = Object.fromEntries(Object.entries(r.headers).map(([name, value]) => [name.toLowerCase(), value]));
  const result: APIGatewayProxyEventV2 = {
    ...event,
    rawPath: r.stage === undefined ? r.path : `/${r.stage}${r.path}`,
    rawQueryString: r.query ?? '',
    headers: r.headersNull ? (undefined as never) : headers,
    isBase64Encoded,
    requestContext: {
      ...event.requestContext,
      http: { ...event.requestContext.http, method: r.method, path: r.path },
      ...(r.domainName !== undefined ? { domainName: r.domainName } : {}),
      ...(r.stage !== undefined ? { stage: r.stage } : {}),
    },
  };
  if (b !== null) result.body = b;
  if (r.query !== undefined) result.queryStringParameters = Object.fromEntries(new URLSearchParams(r.query));
  return result;
}

const LAMBDA_FORMATS = [
  { name: 'REST API (payload 1.0)', toEvent: restEvent as (r: LambdaRequest) => LambdaEvent },
  { name: 'HTTP API (payload 2.0)', toEvent: httpEvent as (r: LambdaRequest) => LambdaEvent },
];

describe.each(LAMBDA_FORMATS)('HTTP fuzz: AWS Lambda, $name', ({ name, toEvent }) => {
  it(`${RUNS} hostile events: matches() never throws, the handler never rejects, never a 500 or a stack`, async () => {
    const { router, stats } = httpTestRouter();
    const errors: { by: string; code: string }[] = [];
    const createContext = ({ info }: { info: { url: URL | null } }) => ({ url: info.url });
    const longPoll = createLongPollLambdaHandler<typeof router, LambdaEvent>({
      router,
      ...LONG_POLL_OPTIONS,
      endpoint: '/trpc',
      createContext,
      onError: ({ error }) => errors.push({ by: 'long-poll', code: error.code }),
    });
    cleanup(longPoll.close);
    const trpc = awsLambdaRequestHandler({ router, createContext, onError: ({ error }) => errors.push({ by: 'trpc', code: error.code }) });
    const t = tally();
    const slots = pool(CONCURRENCY);

    await fc.assert(
      fc.asyncProperty(lambdaRequest, async (r) => {
        const event = toEvent(r);
        await slots.run(async () => {
          let matched: boolean;
          try {
            matched = longPoll.matches(event);
          } catch (cause) {
            t.failures.push({ why: `matches() threw: ${String(cause)}`, request: JSON.stringify(r) });
            return;
          }
          // The long-poll handler answers whatever it is given, routed or not.
          try {
            const result = await longPoll(event, lambdaContext());
            count(t, `long-poll ${result.statusCode}`);
            const answer = { status: result.statusCode ?? 0, reason: '', headers: (result.headers ?? {}) as Record<string, string>, body: result.body ?? '', ms: 0 };
            const verdict = verdictOf({ kind: 'answer', answer }, null);
            if (verdict) t.failures.push({ why: 'fail' in verdict ? verdict.fail : verdict.upstream, request: JSON.stringify(r) });
          } catch (cause) {
            t.failures.push({ why: `the handler rejected: ${String(cause)}`, request: JSON.stringify(r) });
          }
          // What the docs route elsewhere goes to tRPC, whose own failures API Gateway answers with 502.
          if (!matched) {
            await trpc(event as never, lambdaContext()).then(
              (result) => count(t, `trpc ${(result as { statusCode: number }).statusCode}`),
              () => count(t, 'trpc invocation failed (gateway 502)'),
            );
          } else {
            count(t, 'matched');
          }
        });
      }),
      { numRuns: RUNS },
    );
    await slots.drain();
    expect(slots.errors).toEqual([]);
    results.push(`lambda ${name}: ${describeTally(t)}`);
    expect(t.failures.slice(0, 5)).toEqual([]);
    expect(errors.filter((e) => e.by === 'long-poll' && e.code === 'INTERNAL_SERVER_ERROR')).toEqual([]);
    for (const status of [200, 400, 405, 413, 415]) expect(t.counts.get(`long-poll ${status}`) ?? 0, `long-poll ${status}`).toBeGreaterThan(5);
    expect(t.counts.get('matched') ?? 0).toBeGreaterThan(200);

    const good = await longPoll(
      toEvent({
        method: 'POST',
        path: '/trpc',
        headers: { 'content-type': 'application/json' },
        headersNull: false,
        body: JSON.stringify({ v: 1, client: 'after-the-fuzz', poll: 1, hold: 0, subscriptions: [{ key: 'a', path: 'yields' }] }),
        base64: 'as-sent',
        query: undefined,
        domainName: undefined,
        stage: undefined,
      }),
      lambdaContext(),
    );
    expect(good.statusCode).toBe(200);
    await waitFor(() => stats.live <= 1, 5_000, 'the fuzz’s procedures to end');
    expect(unhandled).toEqual([]);
  }, 60_000);
});
