import { createTRPCClient, httpBatchLink, splitLink } from '@trpc/client';
import { longPollLink } from '@trpc-longpoll/client';
import superjson from 'superjson';
import type { AppRouter } from './router';

/**
 * The drop-in set-up: subscriptions share one long-poll, queries and
 * mutations keep batching over plain HTTP. Both talk to the same endpoint.
 */
export function createClient(url: string, user: string) {
  const headers = { 'x-user': user };
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: longPollLink<AppRouter>({ url, headers, transformer: superjson }),
        false: httpBatchLink({ url, headers, transformer: superjson }),
      }),
    ],
  });
}
