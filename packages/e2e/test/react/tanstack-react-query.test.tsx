// @vitest-environment jsdom
import { QueryClientProvider } from '@tanstack/react-query';
import { createTRPCContext, useSubscription } from '@trpc/tanstack-react-query';
import { expect, expectTypeOf } from 'vitest';
import type { TestRouter } from '../../src';
import { defineHookSuite } from './hookSuite';

const { TRPCProvider, useTRPC } = createTRPCContext<TestRouter>();

const useOnAdd = () => {
  const trpc = useTRPC();
  return useSubscription(trpc.post.onAdd.subscriptionOptions(undefined));
};
// Typed data: the tracked envelope with superjson's Date.
expectTypeOf<ReturnType<typeof useOnAdd>['data']>().toEqualTypeOf<{ id: string; data: { text: string; at: Date } } | undefined>();

defineHookSuite({
  title: '@trpc/tanstack-react-query useSubscription over longPollLink',
  Providers: ({ client, queryClient, children }) => (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={client} queryClient={queryClient}>
        {children}
      </TRPCProvider>
    </QueryClientProvider>
  ),
  useOnAdd,
  // The suite's `onError` is left out, as this library's test never passed one.
  useForbidden: () => useSubscription(useTRPC().forbidden.subscriptionOptions()),
  // subscriptionOptions has no `onComplete`.
  useCountdown: (from, { onData }) => useSubscription(useTRPC().countdown.subscriptionOptions({ from }, { onData })),
  useTicks: (room) => useSubscription(useTRPC().ticks.subscriptionOptions({ room })),
  checks: {
    fatalError: ({ error, history }) => {
      expect((error?.data as { reason?: string } | undefined)?.reason).toBe('policy 7');
      expect(history[0]).toBe('connecting');
      expect(history.at(-1)).toBe('error');
    },
    // Ended, the hook keeps no data.
    ended: ({ current }) => expect(current.data).toBeUndefined(),
    // A reset drops the data it had.
    reset: (current) => expect(current.data).toBeUndefined(),
  },
});
