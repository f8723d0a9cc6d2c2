import { TRPCError, type AnyTRPCRouter, type TRPC_ERROR_CODE_KEY } from '@trpc/server';
import { getHTTPStatusCodeFromError, type TRPCRequestInfo } from '@trpc/server/http';
import {
  PROTOCOL_VERSION,
  ProtocolError,
  parsePollRequest,
  type PollRequest,
  type PollSubscription,
} from '@trpc-longpoll/protocol';
import { resolveOptions, type LongPollOptions, type ResolvedOptions } from './options';
import {
  assertSubscription,
  configOf,
  createErrorShaper,
  errorEndJson,
  findProcedure,
  lastEventIdOf,
  resumeLostError,
  startProcedure,
  withLastEventId,
  type ErrorShaper,
  type OnErrorFn,
} from './procedures';
import { Ledger, type Refusal } from './budgets';
import { BodyError, isJsonContentType, readBody, requestUrl, type CoreResponse, type HttpRequest, type PollBody } from './http';
import { lazyInput, type LazyInput } from './input';
import { Run } from './run';
import { Session, type HeldPoll } from './session';
import { INTERNAL_ERROR, reportBug } from './bug';

export type { CoreResponse, HttpRequest, PollBody } from './http';

const BASE_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' } as const;

/** How long a client whose poll was refused keeps its runs: long enough for a poll racing the refusal to arrive. */
const REFUSAL_GRACE_MS = 1_000;

/** A sub's outcome decided before any run: an error that ends it. */
type Verdict = { errorJson: string };

export interface LongPollCore {
  /** Answers one request to the poll endpoint, whatever it holds; never throws. */
  serve(request: HttpRequest): Promise<CoreResponse>;
  /** Answers the error an adapter detects itself (a framework's own refusal of a body). */
  errorResponse(code: TRPC_ERROR_CODE_KEY, message: string, req: unknown, headers?: Record<string, string>): CoreResponse;
  readonly options: ResolvedOptions;
  /** Answers every held poll now, stops every procedure and refuses new polls. */
  close(): Promise<void>;
}

/** What a poll turned out to be once its context exists: whose it is and what it asks for. */
interface Caller {
  poll: PollRequest;
  ctx: unknown;
  req: unknown;
  /** Who the budgets count it against. */
  identity: string;
  sessionKey: string;
  inputs: LazyInput[];
  verdicts: Map<string, Verdict>;
}

export function createLongPollCore(opts: LongPollOptions<AnyTRPCRouter, any>): LongPollCore {
  const { router } = opts;
  if (configOf(router) === undefined) throw new TypeError('trpc-longpoll: `router` is not a tRPC router');
  if ((router._def as { procedures: Record<string, unknown> }).procedures[''] !== undefined) {
    // Polls go to the endpoint itself, which is where a procedure with an empty path would live.
    throw new TypeError('trpc-longpoll: the router has a procedure at the empty path, which is reserved for polls');
  }
  const options = resolveOptions(opts);
  const config = configOf(router);
  const shapeError: ErrorShaper = createErrorShaper(router, opts.onError as OnErrorFn | undefined);
  const ledger = new Ledger(options);
  // Made once here: a closure made per run would keep the scope it was made in (and the poll's input) alive.
  const serializeOutput = (value: unknown) => config.transformer.output.serialize(value);
  const sessions = new Map<string, Session>();
  /** Sessions by client id, so a refused poll reaches its client's runs without a scan. */
  const byClient = new Map<string, Set<Session>>();
  const heldPolls = new Set<HeldPoll>();
  const pendingAnswers = new Set<Promise<unknown>>();
  /** Polls between admission and answer: reading a body, creating a context, held. */
  let inProgress = 0;
  let closed = false;

  function expired(session: Session, now: number): boolean {
    if (session.held) return false;
    return now - session.lastSeen > options.idleTimeoutMs || (session.refusedAt > 0 && now - session.refusedAt >= REFUSAL_GRACE_MS);
  }

  function sweep(): void {
    const now = Date.now();
    for (const [key, session] of sessions) if (expired(session, now)) dropSession(key, session);
  }
  const sweeper = setInterval(sweep, Math.max(50, Math.min(options.idleTimeoutMs / 4, 5_000)));
  sweeper.unref?.();

  function dropSession(key: string, session: Session): void {
    if (sessions.get(key) !== session) return;
    sessions.delete(key);
    const siblings = byClient.get(session.client);
    siblings?.delete(session);
    if (siblings?.size === 0) byClient.delete(session.client);
    session.close();
  }

  /**
   * A client refused (revoked credentials, a throwing `identify`) can no longer read its runs:
   * they stop within the grace, unless a poll of the same client is served meanwhile (the
   * refusal was a forgery with a leaked client id, or a race).
   */
  function refuseClient(client: string): void {
    const siblings = byClient.get(client);
    if (!siblings) return;
    const now = Date.now();
    for (const session of siblings) if (!session.held) session.refusedAt = now;
    setTimeout(sweep, REFUSAL_GRACE_MS + 10).unref?.();
  }

  function respond(status: number, body: string, headers?: Record<string, string>): CoreResponse {
    return { status, headers: headers ? { ...BASE_HEADERS, ...headers } : { ...BASE_HEADERS }, body };
  }

  function errorResponse(code: TRPC_ERROR_CODE_KEY, message: string, req: unknown, headers?: Record<string, string>): CoreResponse {
    return pollError(new TRPCError({ code, message }), req, undefined, headers);
  }

  function pollError(cause: unknown, req: unknown, ctx: unknown, headers?: Record<string, string>): CoreResponse {
    const { error, shape } = shapeError(cause, { path: undefined, input: undefined, ctx, req });
    return respond(getHTTPStatusCodeFromError(error), JSON.stringify({ v: PROTOCOL_VERSION, error: shape }), headers);
  }

  /** Seconds, spread so that refused clients do not come back in one wave. */
  function retryAfter(): Record<string, string> {
    return { 'retry-after': String(1 + Math.floor(Math.random() * 4)) };
  }

  /** The same spread in ms, for a subscription refused for lack of capacity. */
  function retryAfterMs(): number {
    return 1_000 + Math.floor(Math.random() * 3_000);
  }

  /**
   * A poll answered because the handler is closing tells its client to wait
   * 0–2 s (whole seconds, as `Retry-After` allows) before polling again, so
   * the clients of a drained instance reach the others spread out, not in one wave.
   */
  function drainHeaders(): Record<string, string> | undefined {
    return closed ? { 'retry-after': String(Math.floor(Math.random() * 3)) } : undefined;
  }

  const EMPTY = `{"v":${PROTOCOL_VERSION},"results":{}}`;
  const STALE = `{"v":${PROTOCOL_VERSION},"results":{},"stale":true}`;

  async function serve(request: HttpRequest): Promise<CoreResponse> {
    try {
      return await admit(request);
    } catch (cause) {
      // Only a bug (or a throwing errorFormatter) gets here; answer without leaking it and keep serving.
      reportBug(opts.onError, cause, request.req);
      return { ...INTERNAL_ERROR, headers: { ...INTERNAL_ERROR.headers } };
    }
  }

  /** The HTTP rules (docs/protocol.md §2): method, content type, size, deadline, capacity. */
  async function admit(request: HttpRequest): Promise<CoreResponse> {
    const { req } = request;
    const unread = 'stream' in request.body;
    const refuse = (code: TRPC_ERROR_CODE_KEY, message: string, headers?: Record<string, string>): CoreResponse => {
      const answer = errorResponse(code, message, req, headers);
      return unread ? { ...answer, close: true } : answer;
    };
    if (closed) return refuse('SERVICE_UNAVAILABLE', 'The server is shutting down; poll again', retryAfter());
    if (request.method !== 'POST') return refuse('METHOD_NOT_SUPPORTED', 'Polls are POST requests', { allow: 'POST' });
    if (!isJsonContentType(request.header('content-type'))) {
      return refuse('UNSUPPORTED_MEDIA_TYPE', 'Polls are JSON: send content-type: application/json');
    }
    if (Number(request.header('content-length') ?? 0) > options.maxBodyBytes) {
      return refuse('PAYLOAD_TOO_LARGE', `The poll body is larger than ${options.maxBodyBytes} bytes`);
    }
    if (inProgress >= options.maxHeldPolls) return refuse('SERVICE_UNAVAILABLE', 'Too many polls are in progress; poll again later', retryAfter());
    inProgress++;
    try {
      let body: unknown;
      try {
        body = await bodyOf(request.body);
      } catch (cause) {
        if (!(cause instanceof BodyError)) throw cause;
        const code = cause.kind === 'too-large' ? 'PAYLOAD_TOO_LARGE' : cause.kind === 'timeout' ? 'TIMEOUT' : 'BAD_REQUEST';
        return refuse(code, cause.message);
      }
      return await handle(body, request);
    } finally {
      inProgress--;
    }
  }

  async function bodyOf(body: PollBody): Promise<unknown> {
    if ('parsed' in body) return body.parsed;
    const text = 'text' in body ? body.text : await readBody(body.stream, options.maxBodyBytes, options.bodyTimeoutMs);
    if ('text' in body && new TextEncoder().encode(text).byteLength > options.maxBodyBytes) {
      throw new BodyError('too-large', `The poll body is larger than ${options.maxBodyBytes} bytes`);
    }
    return text;
  }

  /** Checks a poll body; a `CoreResponse` is the refusal. */
  function parse(body: unknown, req: unknown): PollRequest | CoreResponse {
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        return errorResponse('PARSE_ERROR', 'The poll body is not valid JSON', req);
      }
    }
    try {
      return parsePollRequest(body, { maxSubscriptions: options.maxSubscriptionsPerPoll });
    } catch (cause) {
      if (!(cause instanceof ProtocolError)) throw cause;
      const code = cause.kind === 'too-many-subscriptions' ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST';
      return errorResponse(code, cause.message, req);
    }
  }

  async function handle(body: unknown, request: HttpRequest): Promise<CoreResponse> {
    const poll = parse(body, request.req);
    if (!('subscriptions' in poll)) return poll;
    const caller = await identifyCaller(poll, request);
    if (!('sessionKey' in caller)) {
      refuseClient(poll.client);
      return caller;
    }
    // A farewell from a client the server has no state for needs none made for it.
    if (poll.subscriptions.length === 0 && !sessions.has(caller.sessionKey)) return respond(200, EMPTY);
    const session = sessionFor(caller);
    if (!(session instanceof Session)) return session;
    if (poll.poll <= session.lastPoll) return respond(200, STALE);
    session.lastPoll = poll.poll;
    session.lastSeen = Date.now();
    session.refusedAt = 0;
    session.held?.release();
    if (poll.subscriptions.length === 0) {
      // The client's farewell: it has nothing left to follow.
      dropSession(caller.sessionKey, session);
      return respond(200, EMPTY);
    }
    await reconcileAll(session, caller);
    for (const input of caller.inputs) input.release();
    if (session.lastPoll !== poll.poll) return respond(200, EMPTY);
    if (caller.verdicts.size === 0 && !hasNews(session, poll)) {
      await hold(session, poll, request.signal);
      if (session.lastPoll !== poll.poll || request.signal.aborted) return respond(200, EMPTY, drainHeaders());
    } else if (options.coalesceMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, options.coalesceMs));
    }
    session.lastSeen = Date.now();
    return respond(200, buildResponse(session, poll, caller.verdicts), drainHeaders());
  }

  /**
   * Resolves the poll's procedures, creates its context and finds whose it is.
   * Paths are checked before the context exists; their errors are shaped after, so errorFormatter sees the context.
   */
  async function identifyCaller(poll: PollRequest, request: HttpRequest): Promise<Caller | CoreResponse> {
    const { req } = request;
    const refused = new Map<string, unknown>();
    const procedures = await Promise.all(poll.subscriptions.map((sub) => findProcedure(router, sub.path).catch(() => null)));
    const inputs = poll.subscriptions.map((sub) => lazyInput(sub.input, config, options));
    const calls: TRPCRequestInfo['calls'] = poll.subscriptions.map((sub, i) => {
      const procedure = procedures[i] ?? null;
      try {
        assertSubscription(procedure, sub.path);
      } catch (cause) {
        refused.set(sub.key, cause);
      }
      return { path: sub.path, getRawInput: async () => inputs[i]!.read(), result: () => inputs[i]!.peek(), procedure, batchIndex: i };
    });
    const info: TRPCRequestInfo = {
      accept: null,
      type: 'subscription',
      isBatchCall: poll.subscriptions.length > 1,
      calls,
      connectionParams: poll.connectionParams ?? null,
      signal: request.signal,
      url: requestUrl(request.url, request.host, request.protocol),
    };
    let ctx: unknown;
    try {
      ctx = await request.createContext(info);
    } catch (cause) {
      return pollError(cause, req, undefined);
    }
    let identity: string | null | undefined;
    let anonymous: string | null | undefined;
    try {
      identity = await opts.identify?.({ ctx: ctx as never });
      if (identity == null) anonymous = opts.budgetKey?.({ ctx: ctx as never, req: req as never });
    } catch (cause) {
      return pollError(cause, req, ctx);
    }
    const verdicts = new Map<string, Verdict>();
    for (const [i, sub] of poll.subscriptions.entries()) {
      const cause = refused.get(sub.key);
      if (cause !== undefined) verdicts.set(sub.key, endWith(cause, sub, ctx, req));
    }
    return {
      poll,
      ctx,
      req,
      // State is bound to who created it: another identity reusing the client id gets a separate, empty session.
      sessionKey: JSON.stringify([identity ?? null, poll.client]),
      identity: identity != null ? `id:${identity}` : anonymous != null ? `key:${anonymous}` : `client:${poll.client}`,
      inputs,
      verdicts,
    };
  }

  function endWith(cause: unknown, sub: PollSubscription, ctx: unknown, req: unknown, extra = ''): Verdict {
    const json = errorEndJson(shapeError, cause, { path: sub.path, input: sub.input, ctx, req });
    return { errorJson: extra ? `${json.slice(0, -1)},${extra}}` : json };
  }

  /** The caller's session, made if it is new and the budgets allow it. */
  function sessionFor(caller: Caller): Session | CoreResponse {
    const existing = sessions.get(caller.sessionKey);
    if (existing) return existing;
    const refusal = ledger.admitSession(caller.identity);
    if (refusal) {
      return refusal.scope === 'process'
        ? pollError(new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'The server is at its client limit; poll again later' }), caller.req, caller.ctx, retryAfter())
        : pollError(new TRPCError({ code: 'TOO_MANY_REQUESTS', message: 'Too many clients for this identity; poll again later' }), caller.req, caller.ctx, retryAfter());
    }
    const session = new Session(caller.identity, caller.poll.client, ledger);
    sessions.set(caller.sessionKey, session);
    let siblings = byClient.get(caller.poll.client);
    if (!siblings) byClient.set(caller.poll.client, (siblings = new Set()));
    siblings.add(session);
    return session;
  }

  /** Cancels what the poll left out and reconciles the rest (§5 steps 5–6); starts wait until each run has begun. */
  async function reconcileAll(session: Session, caller: Caller): Promise<void> {
    const { poll, verdicts, inputs } = caller;
    // The poll is the client's whole set: anything missing was unsubscribed.
    const keys = new Set(poll.subscriptions.map((sub) => sub.key));
    for (const key of [...session.runs.keys()]) if (!keys.has(key)) session.removeRun(key);

    const starts: Promise<void>[] = [];
    for (const [i, sub] of poll.subscriptions.entries()) {
      if (verdicts.has(sub.key)) {
        session.removeRun(sub.key);
        continue;
      }
      const decision = reconcile(session, sub, inputs[i]!);
      if (decision.kind === 'lost') {
        verdicts.set(sub.key, endWith(resumeLostError(), sub, caller.ctx, caller.req));
      } else if (decision.kind === 'start') {
        const refusal = ledger.admitRun(caller.identity);
        if (refusal) verdicts.set(sub.key, refuseRun(refusal, sub, caller));
        else starts.push(startRun(session, sub, inputs[i]!, decision.lastEventId, caller.ctx, caller.req));
      } else {
        // onError reports a running procedure's errors with the latest poll, and the first poll's request is let go.
        session.runs.get(sub.key)!.site.req = caller.req;
      }
    }
    await Promise.all(starts);
  }

  /** A subscription the budgets cannot start now: pressure, which the client retries after the hint (§7). */
  function refuseRun(refusal: Refusal, sub: PollSubscription, caller: Caller): Verdict {
    const error =
      refusal.scope === 'process'
        ? new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'The server runs as many subscriptions as it can; retrying later' })
        : new TRPCError({ code: 'TOO_MANY_REQUESTS', message: 'Too many subscriptions for this identity; retrying later' });
    return endWith(error, sub, caller.ctx, caller.req, `"retryAfterMs":${retryAfterMs()}`);
  }

  type Decision = { kind: 'keep' } | { kind: 'start'; lastEventId: string | undefined } | { kind: 'lost' };

  /** Matches a subscription's cursor against the cached run (docs/protocol.md, "Resuming"). */
  function reconcile(session: Session, sub: PollSubscription, input: LazyInput): Decision {
    const cursor = sub.cursor;
    const run = session.runs.get(sub.key);
    if (run) {
      if (!cursor) return { kind: 'keep' };
      if (cursor.run === run.id) {
        if (cursor.restart && run.endJson !== null) {
          session.removeRun(sub.key);
          return { kind: 'start', lastEventId: cursor.lastEventId };
        }
        run.ack(cursor.seq);
        return { kind: 'keep' };
      }
      // This run was started from the client's cursor, but the answer that announced it was lost. The whole cursor
      // must match: a client that came back to a run resets `seq` to 0, so run and seq alone can recur later.
      if (run.origin && run.origin.run === cursor.run && run.origin.seq === cursor.seq && run.origin.lastEventId === cursor.lastEventId) {
        return { kind: 'keep' };
      }
      // A client that has no event yet stands where its input's lastEventId puts it.
      const position = cursor.lastEventId ?? (cursor.seq === 0 ? lastEventIdOf(input.peekOrRead()) : undefined);
      if (!cursor.restart && position !== undefined && run.adopt(position)) return { kind: 'keep' };
      session.removeRun(sub.key);
    }
    if (!cursor) return { kind: 'start', lastEventId: undefined };
    if (cursor.restart || cursor.lastEventId !== undefined || cursor.seq === 0) {
      return { kind: 'start', lastEventId: cursor.lastEventId };
    }
    return { kind: 'lost' };
  }

  async function startRun(
    session: Session,
    sub: PollSubscription,
    rawInput: LazyInput,
    lastEventId: string | undefined,
    ctx: unknown,
    req: unknown,
  ) {
    const run = new Run(sub.key, sub.cursor, {
      serialize: serializeOutput,
      shapeError,
      // The input is filled in once deserialized, for errorFormatter and onError.
      site: { path: sub.path, input: undefined, ctx, req },
      maxBuffered: options.maxBufferedEvents,
      maxBufferedBytes: options.maxBufferedBytes,
      maxEventBytes: options.maxEventBytes,
      ledger,
      onChange: session.wake,
    });
    session.addRun(run);
    await run.start(async (signal) => {
      const input = withLastEventId(rawInput.read(), lastEventId);
      run.site.input = input;
      run.startFrom(lastEventIdOf(input));
      return startProcedure({ router, path: sub.path, input, ctx, signal });
    });
    // The procedure has validated its input and keeps what it needs: the raw value, whatever its size, goes.
    run.site.input = undefined;
  }

  function hasNews(session: Session, poll: PollRequest): boolean {
    for (const sub of poll.subscriptions) {
      const run = session.runs.get(sub.key);
      if (!run) continue;
      if (run.hasNews) return true;
      // A new subscription or a requested restart is announced at once (the client waits for `started`). A run
      // that only resumes a cursor the client already follows waits for news like any other: announcing it at
      // once would answer every poll at once behind a non-sticky load balancer, each restarting the procedure.
      if (sub.cursor?.run !== run.id && (!sub.cursor || sub.cursor.restart)) return true;
    }
    return false;
  }

  function hold(session: Session, poll: PollRequest, signal: AbortSignal): Promise<void> {
    // A poll that reaches its hold after close() began would otherwise keep close() waiting a whole hold.
    if (signal.aborted || closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const requested = poll.hold === undefined ? options.holdMs : Math.min(poll.hold, options.holdMs);
      // Up to hold/16 of jitter spreads the wake-ups of polls that started together.
      const holdFor = requested + Math.random() * (requested / 16);
      let coalesce: ReturnType<typeof setTimeout> | ReturnType<typeof setImmediate> | null = null;
      const release = () => {
        clearTimeout(timer);
        if (coalesce) {
          clearTimeout(coalesce as ReturnType<typeof setTimeout>);
          clearImmediate(coalesce as ReturnType<typeof setImmediate>);
        }
        signal.removeEventListener('abort', release);
        heldPolls.delete(held);
        if (session.held === held) session.held = null;
        resolve();
      };
      const held: HeldPoll = {
        wake: () => {
          if (coalesce) return;
          coalesce = options.coalesceMs > 0 ? setTimeout(release, options.coalesceMs) : setImmediate(release);
        },
        release,
      };
      const timer = setTimeout(release, holdFor);
      signal.addEventListener('abort', release);
      heldPolls.add(held);
      session.held = held;
      // A caller gone (or a Lambda deadline passed) before the hold began fires no abort event.
      if (signal.aborted) release();
    });
  }

  function buildResponse(session: Session, poll: PollRequest, verdicts: Map<string, Verdict>): string {
    let events = 0;
    let bytes = 0;
    let more = false;
    const parts: string[] = [];
    for (const sub of poll.subscriptions) {
      const verdict = verdicts.get(sub.key);
      if (verdict) {
        parts.push(`${JSON.stringify(sub.key)}:{"end":${verdict.errorJson}}`);
        continue;
      }
      const run = session.runs.get(sub.key);
      if (!run) continue;
      if (run.failedAtStart) {
        // Nothing can refer to a run that never ran; a retry starts afresh.
        session.removeRun(sub.key);
        parts.push(`${JSON.stringify(sub.key)}:{"end":${run.endJson}}`);
        continue;
      }
      if (!run.hasNews && sub.cursor?.run === run.id) continue;
      const pending = run.pending;
      const taken: string[] = [];
      for (const event of pending) {
        if (events > 0 && (events >= options.maxBatchEvents || bytes + event.json.length > options.maxBatchBytes)) {
          more = true;
          break;
        }
        taken.push(event.json);
        events++;
        bytes += event.json.length;
      }
      let part = `${JSON.stringify(sub.key)}:{"run":${JSON.stringify(run.id)}`;
      if (taken.length > 0) part += `,"events":[${taken.join(',')}]`;
      if (run.endJson !== null && taken.length === pending.length) part += `,"end":${run.endJson}`;
      parts.push(part + '}');
    }
    return `{"v":${PROTOCOL_VERSION},"results":{${parts.join(',')}}${more ? ',"more":true' : ''}}`;
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    clearInterval(sweeper);
    for (const held of [...heldPolls]) held.release();
    // Let released polls build their answers before the runs go away.
    await new Promise((resolve) => setImmediate(resolve));
    for (const [key, session] of [...sessions]) dropSession(key, session);
    await Promise.all(pendingAnswers);
  }

  return {
    options,
    errorResponse,
    close,
    serve: async (request) => {
      const answer = serve(request);
      pendingAnswers.add(answer);
      try {
        return await answer;
      } finally {
        pendingAnswers.delete(answer);
      }
    },
  };
}
