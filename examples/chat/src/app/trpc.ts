import { QueryClient } from '@tanstack/react-query';
import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink } from '@trpc/client';
import { createTRPCContext } from '@trpc/tanstack-react-query';
import { longPollLink } from '@trpc-longpoll/client';
import superjson from 'superjson';
import type { ChatRouter } from '../server/router';
import { TRPC_PATH, type Transport } from '../shared/chat';
import { sharedHoldsFetch } from './sharedHolds';

export const { TRPCProvider, useTRPC } = createTRPCContext<ChatRouter>();

export interface PageOptions {
  transport: Transport;
  /** Whether tabs take turns holding a poll (`sharedHoldsFetch`); `?holds=every-tab` turns it off. */
  sharedHolds: boolean;
}

/** `?transport=sse` swaps in tRPC's own SSE link, one EventSource per subscription, for comparison. */
export function optionsFromLocation(search: string): PageOptions {
  const params = new URLSearchParams(search);
  return {
    transport: params.get('transport') === 'sse' ? 'sse' : 'longpoll',
    sharedHolds: params.get('holds') !== 'every-tab',
  };
}

export function createClients({ transport, sharedHolds }: PageOptions) {
  const queryClient = new QueryClient();
  const trpcClient = createTRPCClient<ChatRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        // The only line that changes between the two transports.
        true:
          transport === 'sse'
            ? httpSubscriptionLink({ url: TRPC_PATH, transformer: superjson })
            : longPollLink<ChatRouter>({
                url: TRPC_PATH,
                transformer: superjson,
                ...(sharedHolds ? { fetch: sharedHoldsFetch() } : {}),
              }),
        false: httpBatchLink({ url: TRPC_PATH, transformer: superjson }),
      }),
    ],
  });
  return { queryClient, trpcClient };
}
