import { createTRPCClient, httpBatchLink, splitLink, TRPCClientError } from '@trpc/client';
import type { AnyTRPCRouter } from '@trpc/server';
import { longPollLink, type LongPollLinkOptions } from '@trpc-longpoll/client';
import superjson from 'superjson';

/** The drop-in set-up from the README: subscriptions long-poll, everything else batches. */
export function createLongPollClient<TRouter extends AnyTRPCRouter>(
  url: string,
  opts: Partial<LongPollLinkOptions<TRouter>> = {},
) {
  return createTRPCClient<TRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: longPollLink<TRouter>({ url, transformer: superjson, ...opts } as LongPollLinkOptions<TRouter>),
        false: httpBatchLink({ url, transformer: superjson } as never),
      }),
    ],
  });
}

export type Recorded =
  | { kind: 'state'; state: string; error: string | null }
  | { kind: 'started' }
  | { kind: 'stopped' }
  | { kind: 'data'; data: unknown }
  | { kind: 'error'; error: TRPCClientError<any> }
  | { kind: 'complete' };

export type RecordedKind = Recorded['kind'];
export type RecordedState = Extract<Recorded, { kind: 'state' }>;

/** A recorded entry as two stories can compare it: an error reduced to what tells errors apart. */
export type Comparable =
  | Exclude<Recorded, { kind: 'error' }>
  | { kind: 'error'; message: string; code: string | undefined; name: string };

/** A log with each error reduced to its message, code and name, for `toEqual` across two clients. */
export function comparable(log: readonly Recorded[]): Comparable[] {
  return log.map((entry) =>
    entry.kind === 'error'
      ? { kind: 'error', message: entry.error.message, code: (entry.error.data as { code?: string } | undefined)?.code, name: entry.error.name }
      : entry,
  );
}

/** How long a named wait waits before failing with what was recorded. */
export interface Patience {
  ms?: number;
}

const DEFAULT_MS = 5_000;

/**
 * Records every callback a subscription makes, in order, so a test can read
 * the story: pass `callbacks` to `subscribe`, wait with the named waits
 * (`untilStarted`, `untilData`, `firstError`, …), then compare `story()`,
 * `data()` or `errors()`. Every wait fails after its `ms` with what was
 * recorded so far.
 */
export function recorder<TData = unknown>() {
  const log: Recorded[] = [];
  const waiters = new Set<() => void>();
  const push = (entry: Recorded) => {
    log.push(entry);
    for (const waiter of [...waiters]) waiter();
  };
  const count = (kind: RecordedKind) => log.filter((e) => e.kind === kind).length;
  const data = () => log.flatMap((e) => (e.kind === 'data' ? [e.data as TData] : []));
  const errors = () => log.flatMap((e) => (e.kind === 'error' ? [e.error] : []));
  const isInterruption = (e: Recorded): e is RecordedState => e.kind === 'state' && e.error !== null;

  /** Resolves when `check` holds, failing after `ms` with what was recorded. */
  function until(check: (log: Recorded[]) => boolean, ms = DEFAULT_MS, what = 'a condition'): Promise<void> {
    if (check(log)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        const recorded = JSON.stringify(comparable(log), (_, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value));
        reject(new Error(`Timed out after ${ms} ms waiting for ${what}; recorded: ${recorded}`));
      }, ms);
      const waiter = () => {
        if (!check(log)) return;
        clearTimeout(timer);
        waiters.delete(waiter);
        resolve();
      };
      waiters.add(waiter);
    });
  }

  return {
    log,
    callbacks: {
      onConnectionStateChange: (s: { state: string; error: unknown }) =>
        push({ kind: 'state', state: s.state, error: s.error ? String((s.error as Error).message) : null }),
      onStarted: () => push({ kind: 'started' }),
      onStopped: () => push({ kind: 'stopped' }),
      onData: (data: unknown) => push({ kind: 'data', data }),
      onError: (error: unknown) => push({ kind: 'error', error: error as TRPCClientError<any> }),
      onComplete: () => push({ kind: 'complete' }),
    },
    /** Every `onData` value, in order. */
    data,
    /** Every `onError` error, in order: empty for a subscription that did not fail. */
    errors,
    /** How many times the callback of `kind` ran. */
    count,
    /** The `connecting` states that carried an error: the link met a failure and is trying again. */
    interruptions(): RecordedState[] {
      return log.filter(isInterruption);
    },
    /** `onError` calls and interruptions, in order: empty for a subscription that never met a failure. */
    failures(): Recorded[] {
      return log.filter((e) => e.kind === 'error' || isInterruption(e));
    },
    /**
     * What happened, compactly: states by name (`connecting`, `pending`,
     * `idle`), every other callback by kind (`started`, `data`, `stopped`,
     * `error`, `complete`). With `errors`, a state's error follows it:
     * `connecting(transient)`.
     */
    story(opts: { errors?: boolean } = {}): string[] {
      return log.map((e) => (e.kind !== 'state' ? e.kind : opts.errors && e.error ? `${e.state}(${e.error})` : e.state));
    },
    until,
    /** Until `onStarted` has run `times` times (a restarted run starts again). */
    untilStarted({ times = 1, ms }: Patience & { times?: number } = {}): Promise<void> {
      return until(() => count('started') >= times, ms, times === 1 ? 'onStarted' : `onStarted ×${times}`);
    },
    /** Until at least `n` values have arrived; resolves with all of them. */
    async untilData(n: number, { ms }: Patience = {}): Promise<TData[]> {
      await until(() => count('data') >= n, ms, `${n} onData`);
      return data();
    },
    /** Until `onComplete`. */
    untilComplete({ ms }: Patience = {}): Promise<void> {
      return until(() => count('complete') > 0, ms, 'onComplete');
    },
    /** Until the subscription ended, by `onComplete` or `onError`. */
    untilEnded({ ms }: Patience = {}): Promise<void> {
      return until(() => count('complete') > 0 || count('error') > 0, ms, 'onComplete or onError');
    },
    /** Until the link shows `connecting` with an error: it met a failure and is trying again. */
    untilInterrupted({ ms }: Patience = {}): Promise<void> {
      return until((entries) => entries.some(isInterruption), ms, 'connecting with an error');
    },
    /** Until `onError`; resolves with the first error. */
    async firstError({ ms }: Patience = {}): Promise<TRPCClientError<any>> {
      await until(() => count('error') > 0, ms, 'onError');
      return errors()[0]!;
    },
  };
}

export type Recorder<TData = unknown> = ReturnType<typeof recorder<TData>>;

export async function waitFor(check: () => boolean, ms = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
