// @vitest-environment jsdom
import { QueryClientProvider } from '@tanstack/react-query';
import { createTRPCReact } from '@trpc/react-query';
import { expect, expectTypeOf } from 'vitest';
import type { TestRouter } from '../../src';
import { defineHookSuite } from './hookSuite';

const trpc = createTRPCReact<TestRouter>();

const useOnAdd = () => trpc.post.onAdd.useSubscription(undefined);
// Typed data: the tracked envelope with superjson's Date.
expectTypeOf<ReturnType<typeof useOnAdd>['data']>().toEqualTypeOf<{ id: string; data: { text: string; at: Date } } | undefined>();

defineHookSuite({
  title: '@trpc/react-query trpc.x.useSubscription over longPollLink',
  Providers: ({ client, queryClient, children }) => (
    <trpc.Provider client={client} queryClient={queryClient}>
      <QueryClientProvider client={queryClient}>{children}</QueryClientProvider>
    </trpc.Provider>
  ),
  useOnAdd,
  useForbidden: ({ onError }) => trpc.forbidden.useSubscription(undefined, { onError }),
  useCountdown: (from, { onData, onComplete }) => trpc.countdown.useSubscription({ from }, { onData, onComplete }),
  useTicks: (room) => trpc.ticks.useSubscription({ room }),
  checks: {
    // `onError` got the very error the hook shows.
    fatalError: ({ error, errors }) => expect(errors).toEqual([error]),
    // `onComplete` ran once.
    ended: ({ completed }) => expect(completed).toBe(1),
  },
});
