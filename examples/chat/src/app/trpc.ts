import { QueryClient } from '@tanstack/react-query';
import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink } from '@trpc/client';
import { createTRPCContext } from '@trpc/tanstack-react-query';
import { longPollLink } from '@trpc-longpoll/client';
import superjson from 'superjson';
import type { ChatRouter } from '../server/router';
import { TRPC_PATH, type Transport } from '../shared/chat';

export const { TRPCProvider, useTRPC } = createTRPCContext<ChatRouter>();

export interface PageOptions {
  transport: Transport;
  /** Whether the tabs of the site share one poll (`shareAcrossTabs`); `?holds=every-tab` turns it off. */
  shareAcrossTabs: boolean;
}

/** `?transport=sse` swaps in tRPC's own SSE link, one EventSource per subscription, for comparison. */
export function optionsFromLocation(search: string): PageOptions {
  const params = new URLSearchParams(search);
  return {
    transport: params.get('transport') === 'sse' ? 'sse' : 'longpoll',
    shareAcrossTabs: params.get('holds') !== 'every-tab',
  };
}

export function createClients({ transport, shareAcrossTabs }: PageOptions) {
  const queryClient = new QueryClient();
  const trpcClient = createTRPCClient<ChatRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        // The only line that changes between the two transports.
        true:
          transport === 'sse'
            ? httpSubscriptionLink({ url: TRPC_PATH, transformer: superjson })
            : // One tab (chosen with a Web Lock) holds the poll for every tab of the site.
              longPollLink<ChatRouter>({ url: TRPC_PATH, transformer: superjson, shareAcrossTabs }),
        false: httpBatchLink({ url: TRPC_PATH, transformer: superjson }),
      }),
    ],
  });
  return { queryClient, trpcClient };
}
