import { TRPCError, type AnyTRPCRouter, type TRPCRootConfig, type TRPC_ERROR_CODE_KEY } from '@trpc/server';
import { getHTTPStatusCodeFromError, type TRPCRequestInfo } from '@trpc/server/http';
import {
  PROTOCOL_VERSION,
  ProtocolError,
  afterTurn,
  parsePollRequest,
  randomId,
  waitUntil,
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
  noAffinityError,
  resumeLostError,
  startProcedure,
  type ErrorShaper,
  type OnErrorFn,
} from './procedures';
import { Ledger, type Refusal } from './budgets';
import { BodyError, isJsonContentType, readBody, requestUrl, type CoreResponse, type HttpRequest, type PollBody } from './http';
import { lazyInput, type LazyInput } from './input';
import { reconcile } from './reconcile';
import { Run, type RunDeps } from './run';
import { Session } from './session';
import { SessionTable } from './sessions';
import { StatsCounters, type LongPollStats, type PollOutcome, type RefusalReason } from './stats';
import { EMPTY_ANSWER, STALE_ANSWER, buildAnswer, hasNews, type Verdict } from './answer';
import { INTERNAL_ERROR, reportBug } from './bug';
import { ClusterLink } from './cluster';
import { createObserver, type PollObserver } from './telemetry';
import { serializeOnce } from './serializeOnce';

export type { CoreResponse, HttpRequest, PollBody } from './http';
export type { BudgetUse, LongPollCounters, LongPollStats, PollOutcome, RefusalReason } from './stats';

const BASE_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' } as const;

export interface LongPollCore {
  /** Answers one request to the poll endpoint, whatever it holds; never throws. */
  serve(request: HttpRequest): Promise<CoreResponse>;
  /** Answers the error an adapter detects itself (a framework's own refusal of a body). */
  errorResponse(code: TRPC_ERROR_CODE_KEY, message: string, req: unknown, headers?: Record<string, string>): CoreResponse;
  readonly options: ResolvedOptions;
  /** Answers every held poll now, stops every procedure and refuses new polls. */
  close(): Promise<void>;
  /** A cheap snapshot: what is held and running now, each budget's use, and counters since start. */
  stats(): LongPollStats;
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
  /** The revision of version 1 the client speaks (§2, "Versions"). */
  minor: number;
  /** The client's previous poll was answered by another instance (its `prev` names it). */
  cameFromElsewhere: boolean;
  /** When its context began to be made (`PollObserver.now()`): telemetry's poll duration starts there. */
  startedAt: number;
}

/** The one pipeline every adapter hands its requests to. */
export function createLongPollCore(opts: LongPollOptions<AnyTRPCRouter, any>): LongPollCore {
  const pipeline = new PollPipeline(opts);
  return {
    options: pipeline.options,
    serve: (request) => pipeline.serve(request),
    errorResponse: (code, message, req, headers) => pipeline.errorResponse(code, message, req, headers),
    close: () => pipeline.close(),
    stats: () => pipeline.stats(),
  };
}

function respond(status: number, body: string, headers?: Record<string, string>): CoreResponse {
  return { status, headers: headers ? { ...BASE_HEADERS, ...headers } : { ...BASE_HEADERS }, body };
}

/** Seconds, spread so that refused clients do not come back in one wave. */
function retryAfter(): Record<string, string> {
  return { 'retry-after': String(1 + Math.floor(Math.random() * 4)) };
}

/** The same spread in ms, for a subscription refused for lack of capacity. */
function retryAfterMs(): number {
  return 1_000 + Math.floor(Math.random() * 3_000);
}

/** A body a framework parsed, if its JSON fits the limit; a deeper one than JSON can write is unreadable. */
function withinLimit(parsed: unknown, maxBodyBytes: number): unknown {
  let text: string | undefined;
  try {
    text = JSON.stringify(parsed);
  } catch {
    throw new BodyError('unreadable', 'The poll body cannot be written back as JSON');
  }
  // UTF-16 length is at most the UTF-8 size: encode only when it could matter.
  if (text !== undefined && text.length * 3 > maxBodyBytes && new TextEncoder().encode(text).byteLength > maxBodyBytes) {
    throw new BodyError('too-large', `The poll body is larger than ${maxBodyBytes} bytes`);
  }
  return parsed;
}

/** A full process is unavailable for now (503); an identity past its share is told it asks too much (429). */
function refusalError(refusal: Refusal, messages: { process: string; identity: string }): TRPCError {
  return refusal.scope === 'process'
    ? new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: messages.process })
    : new TRPCError({ code: 'TOO_MANY_REQUESTS', message: messages.identity });
}

/**
 * A poll's way through the server, in the order of docs/protocol.md §5: the
 * HTTP rules, the body, the context and identity, the session, reconciliation
 * (§6), the hold and the answer. The steps' rules live with the state they
 * read (`Session`, `Run`, `reconcile`, `answer`); this class runs them in order.
 */
class PollPipeline {
  readonly options: ResolvedOptions;
  private readonly router: AnyTRPCRouter;
  private readonly config: TRPCRootConfig<any>;
  private readonly shapeError: ErrorShaper;
  private readonly ledger: Ledger;
  private readonly sessions: SessionTable;
  private readonly runDeps: RunDeps;
  private readonly pendingAnswers = new Set<Promise<unknown>>();
  private readonly counters = new StatsCounters();
  /** The `telemetry` option's hooks; they do nothing without it. */
  private readonly observer: PollObserver;
  /** Polls between admission and answer: reading a body, creating a context, held. */
  private inProgress = 0;
  private closed = false;
  /** This instance's name in answers (`via`) and among its peers; not a secret, only tells instances apart. */
  private readonly instance = randomId(9);
  private readonly cluster: ClusterLink | null;

  constructor(private readonly opts: LongPollOptions<AnyTRPCRouter, any>) {
    const { router } = opts;
    if (configOf(router) === undefined) throw new TypeError('trpc-longpoll: `router` is not a tRPC router');
    if ((router._def as { procedures: Record<string, unknown> }).procedures[''] !== undefined) {
      // Polls go to the endpoint itself, which is where a procedure with an empty path would live.
      throw new TypeError('trpc-longpoll: the router has a procedure at the empty path, which is reserved for polls');
    }
    this.router = router;
    this.options = resolveOptions(opts);
    this.config = configOf(router);
    this.shapeError = createErrorShaper(router, opts.onError as OnErrorFn | undefined);
    this.ledger = new Ledger(this.options);
    this.sessions = new SessionTable(this.ledger, this.options.idleTimeoutMs);
    const { config, shapeError, ledger, options } = this;
    // Made once here: a closure made per run would keep the scope it was made in (and the poll's input) alive.
    this.runDeps = {
      open: (call) => startProcedure({ router, ...call }),
      jsonOf: serializeOnce((value) => config.transformer.output.serialize(value)),
      shapeError,
      onCursorError: this.counters.cursorError,
      maxBuffered: options.maxBufferedEvents,
      maxBufferedBytes: options.maxBufferedBytes,
      maxEventBytes: options.maxEventBytes,
      ledger,
    };
    this.observer = createObserver(opts.telemetry, () => this.stats());
    this.cluster = opts.cluster
      ? new ClusterLink(opts.cluster, this.instance, (notice) => {
          if (this.sessions.movedAway(notice.session, notice.poll)) this.counters.move('dropped');
        })
      : null;
  }

  async serve(request: HttpRequest): Promise<CoreResponse> {
    const answer = this.answer(request);
    this.pendingAnswers.add(answer);
    try {
      return await answer;
    } finally {
      this.pendingAnswers.delete(answer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cluster?.close();
    this.sessions.releaseAll();
    // Let released polls build their answers before the runs go away.
    await new Promise<void>((resolve) => afterTurn(resolve));
    this.sessions.dropAll();
    await Promise.all(this.pendingAnswers);
  }

  errorResponse(code: TRPC_ERROR_CODE_KEY, message: string, req: unknown, headers?: Record<string, string>): CoreResponse {
    return this.pollError(new TRPCError({ code, message }), req, undefined, headers);
  }

  private async answer(request: HttpRequest): Promise<CoreResponse> {
    try {
      return await this.admit(request);
    } catch (cause) {
      // Only a bug (or a throwing errorFormatter) gets here; answer without leaking it and keep serving.
      reportBug(this.opts.onError, cause, request.req);
      return { ...INTERNAL_ERROR, headers: { ...INTERNAL_ERROR.headers } };
    }
  }

  /** The HTTP rules (docs/protocol.md §2): method, content type, size, deadline, capacity. */
  private async admit(request: HttpRequest): Promise<CoreResponse> {
    const { req } = request;
    const unread = 'stream' in request.body;
    type Refuse = (reason: RefusalReason, code: TRPC_ERROR_CODE_KEY, message: string, headers?: Record<string, string>) => CoreResponse;
    const refuse: Refuse = (reason, code, message, headers) => {
      const answer = this.refused(reason, this.errorResponse(code, message, req, headers));
      return unread ? { ...answer, close: true } : answer;
    };
    const { maxBodyBytes, maxHeldPolls } = this.options;
    if (this.closed) return refuse('closed', 'SERVICE_UNAVAILABLE', 'The server is shutting down; poll again', retryAfter());
    if (request.method !== 'POST') return refuse('method', 'METHOD_NOT_SUPPORTED', 'Polls are POST requests', { allow: 'POST' });
    if (!isJsonContentType(request.header('content-type'))) {
      return refuse('content-type', 'UNSUPPORTED_MEDIA_TYPE', 'Polls are JSON: send content-type: application/json');
    }
    if (Number(request.header('content-length') ?? 0) > maxBodyBytes) {
      return refuse('body-too-large', 'PAYLOAD_TOO_LARGE', `The poll body is larger than ${maxBodyBytes} bytes`);
    }
    if (this.inProgress >= maxHeldPolls) {
      return refuse('held-polls', 'SERVICE_UNAVAILABLE', 'Too many polls are in progress; poll again later', retryAfter());
    }
    this.inProgress++;
    try {
      let body: unknown;
      try {
        body = await this.bodyOf(request.body);
      } catch (cause) {
        if (!(cause instanceof BodyError)) throw cause;
        if (cause.kind === 'too-large') return refuse('body-too-large', 'PAYLOAD_TOO_LARGE', cause.message);
        if (cause.kind === 'timeout') return refuse('body-timeout', 'TIMEOUT', cause.message);
        return refuse('body-unreadable', 'BAD_REQUEST', cause.message);
      }
      return await this.handle(body, request);
    } finally {
      this.inProgress--;
    }
  }

  private async bodyOf(body: PollBody): Promise<unknown> {
    const { maxBodyBytes, bodyTimeoutMs } = this.options;
    // A framework parsed it under its own limit, and a chunked body declared no length: measure what was parsed.
    if ('parsed' in body) return withinLimit(body.parsed, maxBodyBytes);
    const text = 'text' in body ? body.text : await readBody(body.stream, maxBodyBytes, bodyTimeoutMs);
    if ('text' in body && new TextEncoder().encode(text).byteLength > maxBodyBytes) {
      throw new BodyError('too-large', `The poll body is larger than ${maxBodyBytes} bytes`);
    }
    return text;
  }

  /** Checks a poll body; a `CoreResponse` is the refusal. */
  private parse(body: unknown, req: unknown): PollRequest | CoreResponse {
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        return this.refused('parse', this.errorResponse('PARSE_ERROR', 'The poll body is not valid JSON', req));
      }
    }
    try {
      return parsePollRequest(body, { maxSubscriptions: this.options.maxSubscriptionsPerPoll });
    } catch (cause) {
      if (!(cause instanceof ProtocolError)) throw cause;
      if (cause.kind === 'too-many-subscriptions') {
        return this.refused('too-many-subscriptions', this.errorResponse('PAYLOAD_TOO_LARGE', cause.message, req));
      }
      return this.refused('invalid', this.errorResponse('BAD_REQUEST', cause.message, req));
    }
  }

  /** §5 steps 2–7, once the body is read. */
  private async handle(body: unknown, request: HttpRequest): Promise<CoreResponse> {
    const poll = this.parse(body, request.req);
    if (!('subscriptions' in poll)) return poll;
    const caller = await this.identifyCaller(poll, request);
    if (!('sessionKey' in caller)) {
      this.sessions.refuse(poll.client);
      return caller;
    }
    const empty = this.signed(caller, EMPTY_ANSWER);
    if (poll.subscriptions.length === 0) {
      // The client's farewell: it has nothing left to follow, here or on any other instance.
      this.announce(caller);
      const session = this.sessions.get(caller.sessionKey);
      if (!session) return respond(200, empty);
      if (!session.admit(poll.poll)) return this.answered('stale', caller, respond(200, this.signed(caller, STALE_ANSWER)));
      this.sessions.drop(caller.sessionKey, session);
      return respond(200, empty);
    }
    const session = this.sessionFor(caller);
    if (!(session instanceof Session)) return session;
    const previous = session.newestPoll;
    if (!session.admit(poll.poll)) return this.answered('stale', caller, respond(200, this.signed(caller, STALE_ANSWER)));
    // A client's first poll is number 1; any other number here may follow polls another instance served.
    if (caller.cameFromElsewhere || poll.poll !== (previous < 0 ? 1 : previous + 1)) this.announce(caller);
    await this.reconcileAll(session, caller);
    for (const input of caller.inputs) input.release();
    if (session.supersedes(poll.poll)) return this.answered('released', caller, respond(200, empty));
    return this.answerWhenDue(session, caller, request.signal);
  }

  /**
   * Tells the other instances (the `cluster` option) that this one serves the
   * client now, so they stop its procedures instead of running them until idle
   * expiry. Only when the client may have been elsewhere: a poll that follows
   * its predecessor here, answered here, costs no message.
   */
  private announce(caller: Caller): void {
    if (!this.cluster) return;
    this.counters.move('announced');
    this.cluster.moved({ session: caller.sessionKey, poll: caller.poll.poll });
  }

  /** An answer for a client of revision 1 names this instance (`via`), which the client sends back as `prev`. */
  private signed(caller: Caller, body: string): string {
    return caller.minor >= 1 ? `${body.slice(0, -1)},"via":${JSON.stringify(this.instance)}}` : body;
  }

  /**
   * Resolves the poll's procedures, creates its context and finds whose it is.
   * Paths are checked before the context exists; their errors are shaped after, so errorFormatter sees the context.
   */
  private async identifyCaller(poll: PollRequest, request: HttpRequest): Promise<Caller | CoreResponse> {
    const { req } = request;
    const startedAt = this.observer.now();
    const { info, inputs, refused } = await this.requestInfo(poll, request);
    let ctx: unknown;
    try {
      ctx = await request.createContext(info);
    } catch (cause) {
      return this.refused('context', this.pollError(cause, req, undefined));
    }
    let identity: string | null | undefined;
    let anonymous: string | null | undefined;
    try {
      identity = await this.opts.identify?.({ ctx: ctx as never });
      if (identity == null) anonymous = this.opts.budgetKey?.({ ctx: ctx as never, req: req as never });
    } catch (cause) {
      return this.refused('context', this.pollError(cause, req, ctx));
    }
    const verdicts = new Map<string, Verdict>();
    for (const sub of poll.subscriptions) {
      const cause = refused.get(sub.key);
      if (cause !== undefined) verdicts.set(sub.key, this.endWith(cause, sub, { ctx, req }));
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
      minor: poll.minor ?? 0,
      cameFromElsewhere: poll.prev !== undefined && poll.prev !== this.instance,
      startedAt,
    };
  }

  /** `createContext`'s `info` (§5, step 3), the poll's inputs, and why any path cannot be polled. */
  private async requestInfo(poll: PollRequest, request: HttpRequest) {
    const refused = new Map<string, unknown>();
    const procedures = await Promise.all(poll.subscriptions.map((sub) => findProcedure(this.router, sub.path).catch(() => null)));
    const inputs = poll.subscriptions.map((sub) => lazyInput(sub.input, this.config, this.options));
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
    return { info, inputs, refused };
  }

  /** The caller's session, made if it is new and the budgets allow it. */
  private sessionFor(caller: Caller): Session | CoreResponse {
    const session = this.sessions.open(caller.sessionKey, caller.identity, caller.poll.client);
    if (session instanceof Session) return session;
    const error = refusalError(session, {
      process: 'The server is at its client limit; poll again later',
      identity: 'Too many clients for this identity; poll again later',
    });
    const reason = session.scope === 'process' ? 'sessions' : 'identity-sessions';
    return this.refused(reason, this.pollError(error, caller.req, caller.ctx, retryAfter()));
  }

  /** Cancels what the poll left out and reconciles the rest (§5 steps 5–6); starts wait until each run has begun. */
  private async reconcileAll(session: Session, caller: Caller): Promise<void> {
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
      const start = this.apply(session, sub, inputs[i]!, caller);
      if (start) starts.push(start);
    }
    await Promise.all(starts);
  }

  /** Decides (§6) and carries the decision out: the one place where runs are kept, replaced or lost. */
  private apply(session: Session, sub: PollSubscription, input: LazyInput, caller: Caller): Promise<void> | undefined {
    const decision = reconcile(sub.cursor, session.runs.get(sub.key), () => lastEventIdOf(input.peekOrRead()));
    switch (decision.action) {
      case 'lost': {
        session.removeRun(sub.key);
        // The client names the instance its run was on; if that one is alive, the balancer moved the client.
        const moved = caller.minor >= 1 && caller.cameFromElsewhere && this.cluster?.isPeer(caller.poll.prev!) === true;
        const error = moved ? noAffinityError() : resumeLostError();
        caller.verdicts.set(sub.key, this.endWith(error, sub, caller));
        return undefined;
      }
      case 'start':
        session.removeRun(sub.key);
        return this.startRun(session, sub, input, decision.lastEventId, caller);
      case 'ack':
        decision.run.ack(decision.seq);
        break;
      case 'adopt':
        decision.run.adopt(decision.lastEventId);
        this.counters.run('adopted');
        break;
    }
    // onError reports a running procedure's errors with the latest poll, and the first poll's request is let go.
    decision.run.polledBy(caller.req);
    return undefined;
  }

  /** Starts a run the run budgets admit; one they refuse ends with pressure, which the client retries after the hint (§7). */
  private startRun(session: Session, sub: PollSubscription, input: LazyInput, lastEventId: string | undefined, caller: Caller) {
    const refusal = this.ledger.admitRun(caller.identity);
    if (refusal) {
      caller.verdicts.set(sub.key, this.refuseRun(refusal, sub, caller));
      return undefined;
    }
    const { ctx, req } = caller;
    const bookmarks = caller.minor >= 1;
    const init = { path: sub.path, input: input.settle(), lastEventId, origin: sub.cursor, ctx, req, onChange: session.wake, bookmarks };
    const run = new Run(init, this.runDeps);
    session.addRun(sub.key, run);
    const kind = !sub.cursor || sub.cursor.restart ? 'started' : 'resumed';
    this.counters.run(kind);
    return this.observer.runStart(sub.path, kind, run);
  }

  private refuseRun(refusal: Refusal, sub: PollSubscription, caller: Caller): Verdict {
    // The status the whole poll would have answered with, had it been refused.
    if (refusal.scope === 'process') this.counters.refusal('runs', 503);
    else this.counters.refusal('identity-runs', 429);
    const error = refusalError(refusal, {
      process: 'The server runs as many subscriptions as it can; retrying later',
      identity: 'Too many subscriptions for this identity; retrying later',
    });
    return this.endWith(error, sub, caller, `"retryAfterMs":${retryAfterMs()}`);
  }

  /** §5 step 7: answers at once when there is something to say, or holds the poll until there is. */
  private async answerWhenDue(session: Session, caller: Caller, signal: AbortSignal): Promise<CoreResponse> {
    const { poll, verdicts } = caller;
    const { holdMs, coalesceMs } = this.options;
    let outcome: PollOutcome = 'news';
    if (verdicts.size === 0 && !hasNews(session.runs, poll.subscriptions)) {
      // A poll that reaches its hold after close() began would otherwise keep close() waiting a whole hold.
      const ms = poll.hold === undefined ? holdMs : Math.min(poll.hold, holdMs);
      const end = signal.aborted || this.closed ? 'released' : await session.hold(ms, coalesceMs, signal);
      outcome = this.closed ? 'drain' : end === 'news' ? 'news' : end === 'expired' ? 'holdExpired' : 'released';
      if (session.supersedes(poll.poll) || signal.aborted) {
        return this.answered(outcome, caller, respond(200, this.signed(caller, EMPTY_ANSWER), this.drainHeaders()));
      }
    } else if (coalesceMs > 0) {
      await waitUntil({ ms: coalesceMs });
    }
    session.lastSeen = Date.now();
    const answer = buildAnswer(session.runs, poll.subscriptions, verdicts, this.options);
    for (const key of answer.forget) session.removeRun(key);
    return this.answered(outcome, caller, respond(200, this.signed(caller, answer.body), this.drainHeaders()), answer.events);
  }

  /** Counts an answer by why it went out. */
  private answered(outcome: PollOutcome, caller: Caller, response: CoreResponse, events = 0): CoreResponse {
    this.counters.poll(outcome, events);
    this.observer.pollAnswered(outcome, caller.startedAt, events, caller.poll.subscriptions.length);
    return response;
  }

  /** Counts a refusal by reason with the status it answers with. */
  private refused(reason: RefusalReason, response: CoreResponse): CoreResponse {
    this.counters.refusal(reason, response.status);
    this.observer.pollRefused(reason, response.status);
    return response;
  }

  stats(): LongPollStats {
    const byPath: Record<string, number> = {};
    let total = 0;
    let bufferedEvents = 0;
    for (const session of this.sessions.all()) {
      for (const run of session.runs.values()) {
        byPath[run.path] = (byPath[run.path] ?? 0) + 1;
        total++;
        bufferedEvents += run.pending.length;
      }
    }
    const { ledger, options } = this;
    return {
      heldPolls: this.sessions.heldCount,
      pollsInProgress: this.inProgress,
      sessions: this.sessions.size,
      runs: { total, byPath },
      bufferedEvents,
      bufferedBytes: ledger.bufferedBytes,
      budgets: {
        sessions: { used: ledger.sessions, limit: options.maxSessions },
        runs: { used: ledger.runs, limit: options.maxRuns },
        heldPolls: { used: this.inProgress, limit: options.maxHeldPolls },
        totalBufferedBytes: { used: ledger.bufferedBytes, limit: options.maxTotalBufferedBytes },
      },
      counters: this.counters.snapshot(),
    };
  }

  private pollError(cause: unknown, req: unknown, ctx: unknown, headers?: Record<string, string>): CoreResponse {
    const { error, shape } = this.shapeError(cause, { path: undefined, input: undefined, ctx, req });
    return respond(getHTTPStatusCodeFromError(error), JSON.stringify({ v: PROTOCOL_VERSION, error: shape }), headers);
  }

  /** A subscription's error end, with `extra` fields after the shape's (`"retryAfterMs":…`). */
  private endWith(cause: unknown, sub: PollSubscription, at: { ctx: unknown; req: unknown }, extra = ''): Verdict {
    const json = errorEndJson(this.shapeError, cause, { path: sub.path, input: sub.input, ctx: at.ctx, req: at.req }, this.counters.cursorError);
    return { errorJson: extra ? `${json.slice(0, -1)},${extra}}` : json };
  }

  /**
   * A poll answered because the handler is closing tells its client to wait
   * 0–2 s (whole seconds, as `Retry-After` allows) before polling again, so
   * the clients of a drained instance reach the others spread out, not in one wave.
   */
  private drainHeaders(): Record<string, string> | undefined {
    return this.closed ? { 'retry-after': String(Math.floor(Math.random() * 3)) } : undefined;
  }
}
