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
import { Run } from './run';
import { Session, type HeldPoll } from './session';

/** What an adapter hands the core: the request reduced to what the protocol needs. */
export interface CoreRequest {
  /** The body: raw text, or a value a framework already parsed. */
  body: unknown;
  /** Aborts when the client goes away. */
  signal: AbortSignal;
  url: URL | null;
  /** The adapter's native request, passed to `onError`. */
  req: unknown;
  /** Calls the user's `createContext` with the adapter's own argument shape. */
  createContext: (info: TRPCRequestInfo) => unknown;
}

/** A response-like the adapter writes out. */
export interface CoreResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const BASE_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' } as const;

/** A sub's outcome decided before any run: an error that ends it. */
type Verdict = { errorJson: string };

export interface LongPollCore {
  handle(request: CoreRequest): Promise<CoreResponse>;
  /** Answers the error an adapter detects itself (oversized body, wrong method). */
  errorResponse(code: TRPC_ERROR_CODE_KEY, message: string, req: unknown, headers?: Record<string, string>): CoreResponse;
  readonly options: ResolvedOptions;
  /** Answers every held poll now, stops every procedure and refuses new polls. */
  close(): Promise<void>;
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
  const sessions = new Map<string, Session>();
  const heldPolls = new Set<HeldPoll>();
  const pendingAnswers = new Set<Promise<unknown>>();
  let closed = false;

  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const [key, session] of sessions) {
      if (!session.held && now - session.lastSeen > options.idleTimeoutMs) {
        sessions.delete(key);
        session.cancelAll();
      }
    }
  }, Math.max(50, Math.min(options.idleTimeoutMs / 4, 5_000)));
  sweeper.unref?.();

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

  /**
   * A poll answered because the handler is closing tells its client to wait
   * 0–2 s (whole seconds, as `Retry-After` allows) before polling again, so
   * the clients of a drained instance reach the others spread out, not in one wave.
   */
  function drainHeaders(): Record<string, string> | undefined {
    return closed ? { 'retry-after': String(Math.floor(Math.random() * 3)) } : undefined;
  }

  const EMPTY = `{"v":${PROTOCOL_VERSION},"results":{}}`;

  async function handle(request: CoreRequest): Promise<CoreResponse> {
    const { req } = request;
    if (closed) return errorResponse('SERVICE_UNAVAILABLE', 'The server is shutting down; poll again', req, retryAfter());

    let body = request.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        return errorResponse('PARSE_ERROR', 'The poll body is not valid JSON', req);
      }
    }
    let poll: PollRequest;
    try {
      poll = parsePollRequest(body, { maxSubscriptions: options.maxSubscriptionsPerPoll });
    } catch (cause) {
      if (!(cause instanceof ProtocolError)) throw cause;
      const code = cause.kind === 'too-many-subscriptions' ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST';
      return errorResponse(code, cause.message, req);
    }
    if (heldPolls.size >= options.maxHeldPolls) {
      return errorResponse('SERVICE_UNAVAILABLE', 'Too many polls are held; poll again later', req, retryAfter());
    }

    // Paths are checked before the context exists; the errors are shaped after, so errorFormatter sees the context.
    const refused = new Map<string, unknown>();
    const procedures = await Promise.all(
      poll.subscriptions.map((sub) => findProcedure(router, sub.path).catch(() => null)),
    );
    // Inputs are deserialized only when read: a healthy poll of running subscriptions never needs them.
    const inputs = poll.subscriptions.map((sub) => lazyInput(sub.input));
    const calls: TRPCRequestInfo['calls'] = poll.subscriptions.map((sub, i) => {
      const procedure = procedures[i] ?? null;
      try {
        assertSubscription(procedure, sub.path);
      } catch (cause) {
        refused.set(sub.key, cause);
      }
      return {
        path: sub.path,
        getRawInput: async () => inputs[i]!.read(),
        result: () => inputs[i]!.peek(),
        procedure,
        batchIndex: i,
      };
    });

    const info: TRPCRequestInfo = {
      accept: null,
      type: 'subscription',
      isBatchCall: poll.subscriptions.length > 1,
      calls,
      connectionParams: poll.connectionParams ?? null,
      signal: request.signal,
      url: request.url,
    };
    let ctx: unknown;
    try {
      ctx = await request.createContext(info);
    } catch (cause) {
      return pollError(cause, req, undefined);
    }
    // State is bound to who created it: another identity reusing the client id gets a separate, empty session.
    let sessionKey: string;
    try {
      sessionKey = JSON.stringify([(await opts.identify?.({ ctx: ctx as never })) ?? null, poll.client]);
    } catch (cause) {
      return pollError(cause, req, ctx);
    }
    const verdicts = new Map<string, Verdict>();
    for (const sub of poll.subscriptions) {
      if (!refused.has(sub.key)) continue;
      verdicts.set(sub.key, { errorJson: errorEndJson(shapeError, refused.get(sub.key), { path: sub.path, input: sub.input, ctx, req }) });
    }

    let session = sessions.get(sessionKey);
    if (!session) {
      session = new Session();
      sessions.set(sessionKey, session);
    }
    if (poll.poll <= session.lastPoll) return respond(200, EMPTY);
    session.lastPoll = poll.poll;
    session.lastSeen = Date.now();
    session.held?.release();
    if (poll.subscriptions.length === 0) {
      // The client's farewell: it has nothing left to follow.
      sessions.delete(sessionKey);
      session.cancelAll();
      return respond(200, EMPTY);
    }

    // The poll is the client's whole set: anything missing was unsubscribed.
    const keys = new Set(poll.subscriptions.map((sub) => sub.key));
    for (const key of [...session.runs.keys()]) if (!keys.has(key)) session.cancelRun(key);

    const starts: Promise<void>[] = [];
    for (const [i, sub] of poll.subscriptions.entries()) {
      if (verdicts.has(sub.key)) {
        session.cancelRun(sub.key);
        continue;
      }
      const decision = reconcile(session, sub, inputs[i]!);
      if (decision.kind === 'lost') {
        verdicts.set(sub.key, { errorJson: errorEndJson(shapeError, resumeLostError(), { path: sub.path, input: sub.input, ctx, req }) });
      } else if (decision.kind === 'start') {
        starts.push(startRun(session, sub, inputs[i]!, decision.lastEventId, ctx, req));
      } else {
        // onError reports a running procedure's errors with the latest poll, and the first poll's request is let go.
        session.runs.get(sub.key)!.site.req = req;
      }
    }
    await Promise.all(starts);

    if (session.lastPoll !== poll.poll) return respond(200, EMPTY);
    if (verdicts.size === 0 && !hasNews(session, poll)) {
      await hold(session, poll, request.signal);
      if (session.lastPoll !== poll.poll || request.signal.aborted) return respond(200, EMPTY, drainHeaders());
    } else if (options.coalesceMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, options.coalesceMs));
    }
    session.lastSeen = Date.now();
    return respond(200, buildResponse(session, poll, verdicts), drainHeaders());
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
          session.cancelRun(sub.key);
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
      session.cancelRun(sub.key);
    }
    if (!cursor) return { kind: 'start', lastEventId: undefined };
    if (cursor.restart || cursor.lastEventId !== undefined || cursor.seq === 0) {
      return { kind: 'start', lastEventId: cursor.lastEventId };
    }
    return { kind: 'lost' };
  }

  type LazyInput = ReturnType<typeof lazyInput>;

  function lazyInput(serialized: unknown) {
    let state: { value: unknown } | { error: unknown } | null = null;
    const read = () => {
      if (!state) {
        try {
          state = { value: serialized === undefined ? undefined : config.transformer.input.deserialize(serialized) };
        } catch (cause) {
          state = { error: new TRPCError({ code: 'BAD_REQUEST', message: 'The input could not be deserialized', cause }) };
        }
      }
      if ('error' in state) throw state.error;
      return state.value;
    };
    return {
      read,
      peek: () => (state && 'value' in state ? state.value : undefined),
      /** The input, or undefined when it cannot be deserialized (the run that needs it reports that). */
      peekOrRead: () => {
        try {
          return read();
        } catch {
          return undefined;
        }
      },
    };
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
      serialize: (value) => config.transformer.output.serialize(value),
      shapeError,
      // The input is filled in once deserialized, for errorFormatter and onError.
      site: { path: sub.path, input: undefined, ctx, req },
      maxBuffered: options.maxBufferedEvents,
      onChange: session.wake,
    });
    session.runs.set(sub.key, run);
    await run.start(async (signal) => {
      const input = withLastEventId(rawInput.read(), lastEventId);
      run.site.input = input;
      run.startFrom(lastEventIdOf(input));
      return startProcedure({ router, path: sub.path, input, ctx, signal });
    });
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
        session.runs.delete(sub.key);
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
    for (const session of sessions.values()) session.cancelAll();
    sessions.clear();
    await Promise.all(pendingAnswers);
  }

  return {
    options,
    errorResponse,
    close,
    handle: async (request) => {
      const answer = handle(request);
      pendingAnswers.add(answer);
      try {
        return await answer;
      } finally {
        pendingAnswers.delete(answer);
      }
    },
  };
}
