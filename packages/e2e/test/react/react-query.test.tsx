// @vitest-environment jsdom
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { act, cleanup, renderHook, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { TRPCClientError } from '@trpc/client';
import { createTRPCReact } from '@trpc/react-query';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import type { TestRouter } from '../../src';
import { startHookFixture, statusHistory } from './harness';

const trpc = createTRPCReact<TestRouter>();

let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  cleanup();
  await stop?.();
  stop = undefined;
});

async function setup() {
  const ctx = await startHookFixture();
  stop = () => ctx.server.close();
  const queryClient = new QueryClient();
  const wrapper = ({ children }: { children: ReactNode }) => (
    <trpc.Provider client={ctx.client} queryClient={queryClient}>
      <QueryClientProvider client={queryClient}>{children}</QueryClientProvider>
    </trpc.Provider>
  );
  return { ...ctx, wrapper };
}

const patience = { timeout: 5_000 };

describe('@trpc/react-query trpc.x.useSubscription over longPollLink', () => {
  it('goes connecting → pending and renders typed data', async () => {
    const { client, wrapper } = await setup();
    const history = statusHistory();
    const { result } = renderHook(
      () => {
        const sub = trpc.post.onAdd.useSubscription(undefined);
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

    const data = result.current.data;
    expectTypeOf(data).toEqualTypeOf<{ id: string; data: { text: string; at: Date } } | undefined>();
    expect(data?.id).toBe('1');
    expect(data?.data.at).toBeInstanceOf(Date);
    expect(result.current.error).toBeNull();
    expect(history.seen).toEqual(['connecting', 'pending']);
  });

  it('turns to error with the server’s error on a fatal error', async () => {
    const { wrapper } = await setup();
    const errors: unknown[] = [];
    const { result } = renderHook(
      () => {
        const sub = trpc.forbidden.useSubscription(undefined, { onError: (e) => errors.push(e) });
        void sub.status;
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
    expect(errors).toEqual([error]);
  });

  it('goes idle when the server ends the subscription', async () => {
    const { wrapper } = await setup();
    const history = statusHistory();
    const received: number[] = [];
    let completed = 0;
    const { result } = renderHook(
      () => {
        const sub = trpc.countdown.useSubscription(
          { from: 3 },
          { onData: (n) => received.push(n), onComplete: () => completed++ },
        );
        history.record(sub.status);
        return sub;
      },
      { wrapper },
    );
    await waitFor(() => expect(result.current.status).toBe('idle'), patience);
    expect(received).toEqual([3, 2, 1]);
    expect(completed).toBe(1);
    expect(history.seen[0]).toBe('connecting');
    expect(history.seen.at(-1)).toBe('idle');
  });

  it('re-subscribes on reset()', async () => {
    const { fixture, wrapper } = await setup();
    const { result } = renderHook(
      () => {
        const sub = trpc.ticks.useSubscription({ room: 'r' });
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
        const sub = trpc.ticks.useSubscription({ room: 'u' });
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
