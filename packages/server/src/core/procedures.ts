import {
  TRPCError,
  callTRPCProcedure,
  getTRPCErrorFromUnknown,
  getTRPCErrorShape,
  type AnyTRPCProcedure,
  type AnyTRPCRouter,
  type TRPCRootConfig,
} from '@trpc/server';
import { isObservable, observableToAsyncIterable } from '@trpc/server/observable';
import { CURSOR_ERROR_REASONS, type CursorErrorReason } from '@trpc-longpoll/protocol';

type RouterDef = {
  procedures: Record<string, AnyTRPCProcedure | undefined>;
  lazy?: Record<string, { load: () => Promise<void> }>;
  _config: TRPCRootConfig<any>;
};

function defOf(router: AnyTRPCRouter): RouterDef {
  return router._def as unknown as RouterDef;
}

export function configOf(router: AnyTRPCRouter): TRPCRootConfig<any> {
  return defOf(router)._config;
}

/**
 * Finds a procedure, loading `lazy()` routers on the way, as tRPC's own
 * lookup does (that one is not public, and the type check below needs it).
 */
export async function findProcedure(router: AnyTRPCRouter, path: string): Promise<AnyTRPCProcedure | null> {
  const def = defOf(router);
  let procedure = def.procedures[path];
  while (!procedure) {
    const key = Object.keys(def.lazy ?? {}).find((prefix) => path === prefix || path.startsWith(prefix + '.'));
    if (!key) return null;
    await def.lazy![key]!.load();
    procedure = def.procedures[path];
  }
  return procedure;
}

/** Refuses what cannot be polled with a message that says what was sent. */
export function assertSubscription(procedure: AnyTRPCProcedure | null, path: string): asserts procedure is AnyTRPCProcedure {
  if (!procedure) {
    throw new TRPCError({ code: 'NOT_FOUND', message: `No procedure at path "${path}"` });
  }
  const type = procedure._def.type;
  if (type !== 'subscription') {
    throw new TRPCError({
      code: 'METHOD_NOT_SUPPORTED',
      message: `"${path}" is a ${type}; only subscriptions can be long-polled`,
    });
  }
}

/** The same merge tRPC applies to `Last-Event-ID` for SSE subscriptions. */
export function withLastEventId(input: unknown, lastEventId: string | undefined): unknown {
  if (lastEventId === undefined) return input;
  if (input === undefined || input === null) return { lastEventId };
  if (typeof input !== 'object') return input;
  return { ...(input as object), lastEventId };
}

/** The position a tracked procedure starts from: its input's `lastEventId`. */
export function lastEventIdOf(input: unknown): string | undefined {
  if (typeof input !== 'object' || input === null) return undefined;
  const id = (input as { lastEventId?: unknown }).lastEventId;
  return typeof id === 'string' ? id : undefined;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/** One call of a subscription procedure. */
export interface ProcedureCall {
  path: string;
  input: unknown;
  ctx: unknown;
  signal: AbortSignal;
}

/** Calls the procedure and hands back its iterator (observables adapted like tRPC does). */
export async function startProcedure(opts: ProcedureCall & { router: AnyTRPCRouter }): Promise<AsyncIterator<unknown>> {
  // Dropped once the procedure has validated it, so a long-running procedure does not pin the raw input.
  let raw: { input: unknown } | null = { input: opts.input };
  const result: unknown = await callTRPCProcedure({
    router: opts.router,
    path: opts.path,
    type: 'subscription',
    ctx: opts.ctx,
    getRawInput: async () => raw?.input,
    signal: opts.signal,
    batchIndex: 0,
  }).finally(() => {
    raw = null;
  });
  if (isObservable(result)) {
    return observableToAsyncIterable(result, opts.signal)[Symbol.asyncIterator]();
  }
  if (!isAsyncIterable(result)) {
    throw new TRPCError({
      code: 'INTERNAL_SERVER_ERROR',
      message: `Subscription "${opts.path}" did not return an observable or an async iterable`,
    });
  }
  return result[Symbol.asyncIterator]();
}

/**
 * An error (or one of its causes) that carries `cursorReason` is the
 * transport's verdict on a cursor, such as an event log's "gone"; the client
 * gets it as a typed `LongPollCursorError`.
 */
export function cursorReasonOf(cause: unknown): CursorErrorReason | undefined {
  let current: unknown = cause;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const reason = (current as { cursorReason?: unknown }).cursorReason;
    if (CURSOR_ERROR_REASONS.includes(reason as never)) return reason as CursorErrorReason;
    current = current.cause;
  }
  return undefined;
}

export interface ErrorSite {
  path: string | undefined;
  input: unknown;
  ctx: unknown;
  /** The adapter's native request, for `onError`. */
  req: unknown;
}

export type OnErrorFn = (opts: {
  error: TRPCError;
  type: 'subscription';
  path: string | undefined;
  input: unknown;
  ctx: unknown;
  req: any;
}) => void;

/** Reports an error to `onError` and returns it with its formatted, serialized shape. */
export type ErrorShaper = (cause: unknown, at: ErrorSite) => { error: TRPCError; shape: unknown };

/**
 * The wire `end` of a subscription that failed with `cause`; a cursor reason comes from the cause chain, whoever raised it.
 * `onReason` hears of that reason (for the operator's counters).
 */
export function errorEndJson(shapeError: ErrorShaper, cause: unknown, at: ErrorSite, onReason?: (reason: CursorErrorReason) => void): string {
  const { shape } = shapeError(cause, at);
  const reason = cursorReasonOf(cause);
  if (reason !== undefined) onReason?.(reason);
  return JSON.stringify({ type: 'error', error: shape, reason });
}

/** The transport's own cursor verdict: the run is gone and its untracked events cannot be replayed. */
export function resumeLostError(): TRPCError {
  const marker = Object.assign(new Error('resume-lost'), { cursorReason: 'resume-lost' as const });
  return new TRPCError({
    code: 'CONFLICT',
    message:
      'The subscription cannot resume: the server lost its state and the procedure yields untracked events, so some may be missed. Subscribe again.',
    cause: marker,
  });
}

/**
 * `resume-lost` with its cause known (revision 1 clients): the client's poll came from
 * another instance, which runs the untracked procedure; only routing the client's polls
 * to one instance (affinity) or tracked events make such a subscription work.
 */
export function noAffinityError(): TRPCError {
  const marker = Object.assign(new Error('no-affinity'), { cursorReason: 'no-affinity' as const });
  return new TRPCError({
    code: 'CONFLICT',
    message:
      'The subscription cannot continue: its procedure yields untracked events, which only the instance running it has, and the load balancer sent this poll to another instance. Route each client to one instance by the lp_affinity query parameter (docs/scaling.md, "Affinity"), or yield tracked() events.',
    cause: marker,
  });
}

export function createErrorShaper(router: AnyTRPCRouter, onError: OnErrorFn | undefined): ErrorShaper {
  const config = configOf(router);
  return (cause, at) => {
    const error = getTRPCErrorFromUnknown(cause);
    try {
      onError?.({ error, type: 'subscription', path: at.path, input: at.input, ctx: at.ctx, req: at.req });
    } catch {
      // A throwing onError must not take the poll down with it.
    }
    const shape = getTRPCErrorShape({ config, error, type: 'subscription', path: at.path, input: at.input, ctx: at.ctx });
    return { error, shape: config.transformer.output.serialize(shape) };
  };
}
