import { createTRPCClient, httpBatchLink, splitLink, TRPCClientError, type TRPCLink } from '@trpc/client';
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

export function createClientWith<TRouter extends AnyTRPCRouter>(url: string, link: TRPCLink<TRouter>) {
  return createTRPCClient<TRouter>({
    links: [splitLink({ condition: (op) => op.type === 'subscription', true: link, false: httpBatchLink({ url, transformer: superjson } as never) })],
  });
}

export type Recorded =
  | { kind: 'state'; state: string; error: string | null }
  | { kind: 'started' }
  | { kind: 'stopped' }
  | { kind: 'data'; data: unknown }
  | { kind: 'error'; error: TRPCClientError<any> }
  | { kind: 'complete' };

/** Records every callback a subscription makes, in order, so a test can read the story. */
export function recorder() {
  const log: Recorded[] = [];
  const waiters = new Set<() => void>();
  const push = (entry: Recorded) => {
    log.push(entry);
    for (const waiter of [...waiters]) waiter();
  };
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
    data(): unknown[] {
      return log.filter((e) => e.kind === 'data').map((e) => (e as { data: unknown }).data);
    },
    /** Resolves when `check` holds, failing after `ms` with what was recorded. */
    until(check: (log: Recorded[]) => boolean, ms = 5_000): Promise<void> {
      if (check(log)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`Timed out; recorded: ${JSON.stringify(log.map(summary))}`));
        }, ms);
        const waiter = () => {
          if (!check(log)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve();
        };
        waiters.add(waiter);
      });
    },
  };
}

function summary(entry: Recorded): unknown {
  if (entry.kind === 'error') return { kind: 'error', message: entry.error.message };
  return entry;
}

export async function waitFor(check: () => boolean, ms = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
