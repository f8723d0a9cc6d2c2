'use client';
import { QueryClient } from '@tanstack/react-query';
import { createTRPCClient, httpBatchLink, splitLink } from '@trpc/client';
import { createTRPCContext } from '@trpc/tanstack-react-query';
import { longPollLink } from '@trpc-longpoll/client';
import superjson from 'superjson';
import type { AppRouter } from '../server/router';
import { APP_TRPC } from '../shared/chat';

export const { TRPCProvider, useTRPC } = createTRPCContext<AppRouter>();

export function createClients() {
  const queryClient = new QueryClient();
  const trpcClient = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        // The tabs of the site elect one (with a Web Lock) to hold a single poll for all of them.
        true: longPollLink<AppRouter>({ url: APP_TRPC, transformer: superjson, shareAcrossTabs: true }),
        false: httpBatchLink({ url: APP_TRPC, transformer: superjson }),
      }),
    ],
  });
  return { queryClient, trpcClient };
}
