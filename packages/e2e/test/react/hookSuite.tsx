import { QueryClient } from '@tanstack/react-query';
import { act, cleanup, renderHook, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { TRPCClientError } from '@trpc/client';
import { afterEach, describe, expect, it } from 'vitest';
import { createLongPollClient, createTestRouter, startServer, type TestPost, type TestRouter } from '../../src';

/**
 * One suite for the React hooks of both tRPC integrations, run over the real
 * `longPollLink` against a real server (jsdom keeps Node's fetch, so the link
 * reaches the server as it would from a browser). Each library's file says how
 * it mounts and calls its hooks, checks the types they give, and adds the
 * checks only its own API allows.
 */

/** A hook's result, as far as the suite reads it: both libraries' results fit. */
export interface SubscriptionView<TData> {
  status: string;
  data: TData | undefined;
  error: { message: string; data?: { code?: string } | null | undefined } | null;
  reset(): void;
}

/** The statuses a hook rendered, in order, with repeats of the same status collapsed. */
export interface StatusHistory {
  seen: string[];
  record(status: string): void;
}

export interface HookLibrary {
  /** The `describe` title. */
  title: string;
  /** The library's providers around `children`. */
  Providers(props: { client: ReturnType<typeof createLongPollClient<TestRouter>>; queryClient: QueryClient; children: ReactNode }): ReactNode;
  useOnAdd(): SubscriptionView<TestPost>;
  useForbidden(on: { onError(error: unknown): void }): SubscriptionView<unknown>;
  /** `onComplete` where the library has it. */
  useCountdown(from: number, on: { onData(n: number): void; onComplete(): void }): SubscriptionView<number>;
  useTicks(room: string): SubscriptionView<number>;
  /** Each library's own checks, at the points of the suite named. */
  checks?: {
    /** After a fatal error: `errors` is what `onError` got, `history` the statuses rendered. */
    fatalError?(seen: { error: SubscriptionView<unknown>['error']; errors: unknown[]; history: string[] }): void;
    /** Once the server ended the subscription and the hook went idle. */
    ended?(seen: { current: SubscriptionView<number>; completed: number }): void;
    /** Right after `reset()`. */
    reset?(current: SubscriptionView<number>): void;
  };
}

function statusHistory(): StatusHistory {
  const seen: string[] = [];
  return {
    seen,
    record(status) {
      if (seen[seen.length - 1] !== status) seen.push(status);
    },
  };
}

const patience = { timeout: 5_000 };

export function defineHookSuite(lib: HookLibrary): void {
  describe(lib.title, () => {
    let stop: (() => Promise<void>) | undefined;
    afterEach(async () => {
      cleanup();
      await stop?.();
      stop = undefined;
    });

    async function setup() {
      const fixture = createTestRouter();
      const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }) });
      stop = () => server.close();
      const client = createLongPollClient<TestRouter>(server.url);
      const queryClient = new QueryClient();
      const wrapper = ({ children }: { children: ReactNode }) => (
        <lib.Providers client={client} queryClient={queryClient}>
          {children}
        </lib.Providers>
      );
      return { fixture, server, client, wrapper };
    }

    it('goes connecting → pending and renders typed data', async () => {
      const { client, wrapper } = await setup();
      const history = statusHistory();
      const { result } = renderHook(
        () => {
          const sub = lib.useOnAdd();
          history.record(sub.status);
          // The hook re-renders only for the fields a render reads.
          void sub.data;
          return sub;
        },
        { wrapper },
      );
      expect(history.seen).toEqual(['connecting']);
      await waitFor(() => expect(result.current.status).toBe('pending'), patience);

      await client.post.add.mutate({ text: 'hello' });
      await waitFor(() => expect(result.current.data?.data.text).toBe('hello'), patience);

      // The type each library gives `data` is checked in its own file.
      const data = result.current.data;
      expect(data?.id).toBe('1');
      expect(data?.data.at).toBeInstanceOf(Date);
      expect(result.current.error).toBeNull();
      expect(history.seen).toEqual(['connecting', 'pending']);
    });

    it('turns to error with the server’s error on a fatal error', async () => {
      const { wrapper } = await setup();
      const history = statusHistory();
      const errors: unknown[] = [];
      const { result } = renderHook(
        () => {
          const sub = lib.useForbidden({ onError: (e) => errors.push(e) });
          history.record(sub.status);
          void sub.error;
          return sub;
        },
        { wrapper },
      );
      await waitFor(() => expect(result.current.status).toBe('error'), patience);
      const error = result.current.error;
      expect(error).toBeInstanceOf(TRPCClientError);
      expect(error?.message).toBe('No access');
      expect(error?.data?.code).toBe('FORBIDDEN');
      lib.checks?.fatalError?.({ error, errors, history: history.seen });
    });

    it('goes idle when the server ends the subscription', async () => {
      const { wrapper } = await setup();
      const history = statusHistory();
      const received: number[] = [];
      let completed = 0;
      const { result } = renderHook(
        () => {
          const sub = lib.useCountdown(3, { onData: (n) => received.push(n), onComplete: () => completed++ });
          history.record(sub.status);
          return sub;
        },
        { wrapper },
      );
      await waitFor(() => expect(result.current.status).toBe('idle'), patience);
      expect(received).toEqual([3, 2, 1]);
      lib.checks?.ended?.({ current: result.current, completed });
      expect(history.seen[0]).toBe('connecting');
      expect(history.seen.at(-1)).toBe('idle');
    });

    it('re-subscribes on reset()', async () => {
      const { fixture, wrapper } = await setup();
      const { result } = renderHook(
        () => {
          const sub = lib.useTicks('r');
          void sub.status;
          void sub.data;
          return sub;
        },
        { wrapper },
      );
      // The listener attaches once the run starts iterating, so keep ticking until one lands.
      await waitFor(() => {
        fixture.ticker.emit('r', 1);
        expect(result.current.data).toBe(1);
      }, patience);

      act(() => result.current.reset());
      expect(result.current.status).toBe('connecting');
      lib.checks?.reset?.(result.current);

      await waitFor(() => expect(fixture.started.filter((s) => s === 'ticks:r')).toHaveLength(2), patience);
      await waitFor(() => expect(fixture.finallies).toContain('ticks:r'), patience);
      await waitFor(() => {
        fixture.ticker.emit('r', 2);
        expect(result.current.data).toBe(2);
      }, patience);
      expect(result.current.status).toBe('pending');
    });

    it('stops the procedure on the server when the component unmounts', async () => {
      const { fixture, wrapper } = await setup();
      const { result, unmount } = renderHook(
        () => {
          const sub = lib.useTicks('u');
          void sub.status;
          void sub.data;
          return sub;
        },
        { wrapper },
      );
      await waitFor(() => {
        fixture.ticker.emit('u', 1);
        expect(result.current.data).toBe(1);
      }, patience);
      expect(fixture.finallies).toEqual([]);

      unmount();
      await waitFor(() => expect(fixture.finallies).toEqual(['ticks:u']), { timeout: 1_000 });
    });
  });
}
