import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listen } from '../listen';
import { bundleLambda } from './bundle';
import { httpAnswer, httpApiEvent, matchRoute, restApiEvent, STAGE, type GatewayRequest, type PayloadVersion, type Route } from './events';
import { EnvironmentPool, type Placement } from './pool';

export type { EnvironmentInfo, LogLine, Placement } from './pool';

export interface DispatcherOptions {
  /** `v1`: a REST API (payload 1.0); `v2`: an HTTP API (payload 2.0). */
  payload: PayloadVersion;
  /** The handler module every environment loads (an ES module). Default: `app.ts` beside this file, bundled. */
  handler?: string;
  /** Environment variables of the function. */
  env?: Record<string, string | undefined>;
  /** API Gateway's integration timeout: past it the client gets `504`. Default 29 000. */
  integrationTimeoutMs?: number;
  /** The function timeout. Default 30 000. */
  functionTimeoutMs?: number;
  /** Chance that an environment is discarded after an invocation instead of frozen for the next. Default 0. */
  recycleChance?: number;
  /** Seeds the harness's random choices (recycling, which idle environment gets an invocation). */
  seed?: number;
  /** The API's routes, all to this one function. Default `POST /trpc` and `ANY /trpc/{proxy+}`. */
  routes?: Route[];
}

/** One request the gateway passed to the function. */
export interface Invocation {
  /** The environment that ran it, and whether it was started for it. */
  environment: number;
  pid: number;
  cold: boolean;
  method: string;
  path: string;
  /** What the client got; `504` when the integration timeout cut it. */
  status: number;
  ms: number;
}

const defaultRoutes: Route[] = [
  { method: 'POST', resource: '/trpc' },
  { method: 'ANY', resource: '/trpc/{proxy+}' },
];
/** Lambda's limit on a synchronous invocation's response (6 MB). */
const MAX_RESPONSE_BYTES = 6 * 1024 * 1024;

async function readRequest(req: IncomingMessage): Promise<GatewayRequest> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const url = new URL(req.url ?? '/', 'http://gateway');
  const path = url.pathname.startsWith(`/${STAGE}/`) ? url.pathname.slice(STAGE.length + 1) : '';
  return { method: req.method ?? 'GET', path, query: url.search.slice(1), headers: req.headers, body: Buffer.concat(chunks), sourceIp: '127.0.0.1' };
}

function answerJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * API Gateway in front of a Lambda function, on 127.0.0.1: each HTTP request
 * becomes one proxy-integration event, invokes one execution environment
 * (a frozen one if any is idle, else a cold one: concurrency scales out),
 * and the function's result is written back whole — nothing reaches the
 * client before the handler returns — or `504` at the integration timeout.
 * See README.md beside this file for what is faithful and what is not.
 */
export async function startLambdaGateway(opts: DispatcherOptions) {
  const bundle = await bundleLambda();
  const pool = new EnvironmentPool({
    runtime: bundle.runtime,
    handler: opts.handler ?? bundle.handler,
    env: opts.env ?? {},
    functionTimeoutMs: opts.functionTimeoutMs ?? 30_000,
    recycleChance: opts.recycleChance ?? 0,
    seed: opts.seed ?? Date.now(),
  });
  const invocations: Invocation[] = [];
  let paused: Promise<void> | null = null;

  const server = createServer((req, res) => {
    void (async () => {
      const request = await readRequest(req);
      if (paused) await paused;
      await dispatch(request, res, { opts, pool, invocations });
    })().catch(() => {
      if (!res.headersSent) answerJson(res, 502, { message: 'Internal server error' });
      else res.destroy();
    });
  });
  const listening = await listen(server);

  return {
    /** The stage's base URL: the tRPC endpoint is `${url}/trpc`. */
    url: `${listening.url}/${STAGE}`,
    invocations,
    /** What the environments logged, each line with its environment. */
    logs: pool.logs,
    /** Environments alive now. */
    environments: () => pool.list(),
    place: (choose: Placement | null) => pool.place(choose),
    counts: () => ({ ...pool.counts }),
    /** Cold start durations so far, in ms (Node loading the bundle here: not Lambda's figures). */
    coldStarts: () => [...pool.coldStarts],
    recycleIdle: () => pool.recycleIdle(),
    /**
     * Holds requests at the gateway until the returned function is called,
     * as if the client were off the network; invocations in flight finish.
     */
    pause(): () => void {
      let release!: () => void;
      paused = new Promise((resolve) => (release = resolve));
      return () => {
        paused = null;
        release();
      };
    },
    async close(): Promise<void> {
      await listening.close();
      await pool.close();
    },
  };
}

export type LambdaGateway = Awaited<ReturnType<typeof startLambdaGateway>>;

/** One request through the gateway: the gateway's own answer, or one invocation and its buffered result, or 504 at the cut. */
async function dispatch(
  request: GatewayRequest,
  res: ServerResponse,
  { opts, pool, invocations }: { opts: DispatcherOptions; pool: EnvironmentPool; invocations: Invocation[] },
): Promise<void> {
  const matched = matchRoute(opts.routes ?? defaultRoutes, request.method, request.path);
  if (!matched) {
    // REST APIs answer an unknown route 403 "Missing Authentication Token", HTTP APIs 404.
    if (opts.payload === 'v1') return answerJson(res, 403, { message: 'Missing Authentication Token' });
    return answerJson(res, 404, { message: 'Not Found' });
  }
  const event = opts.payload === 'v1' ? restApiEvent(request, matched) : httpApiEvent(request, matched);
  const begun = Date.now();
  const record = (status: number, ran?: { environment: { id: number; pid: number }; cold: boolean }) =>
    invocations.push({
      environment: ran?.environment.id ?? 0,
      pid: ran?.environment.pid ?? 0,
      cold: ran?.cold ?? false,
      method: request.method,
      path: request.path,
      status,
      ms: Date.now() - begun,
    });
  let timer: NodeJS.Timeout | undefined;
  const cut = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), opts.integrationTimeoutMs ?? 29_000)));
  const invocation = pool.invoke(event);
  const done = await Promise.race([invocation, cut]);
  clearTimeout(timer);
  if (done === null) {
    // The invocation runs on to its end (or the function timeout); only the client has been answered.
    answerJson(res, 504, { message: 'Endpoint request timed out' });
    void invocation.then((ran) => record(504, ran)).catch(() => record(504));
    return;
  }
  const answer = done.outcome.ok ? httpAnswer(opts.payload, done.outcome.result) : null;
  if (!answer || answer.body.length > MAX_RESPONSE_BYTES) {
    record(502, done);
    return answerJson(res, 502, { message: 'Internal server error' });
  }
  record(answer.status, done);
  // The gateway frames the answer itself, whatever the function said about it.
  const headers = answer.headers.filter(([name]) => !/^(content-length|transfer-encoding|connection)$/i.test(name));
  res.writeHead(answer.status, [...headers.flat(), 'content-length', String(answer.body.length)]);
  res.end(answer.body);
}
