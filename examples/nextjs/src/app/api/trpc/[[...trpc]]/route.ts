import { fetchRequestHandler } from '@trpc/server/adapters/fetch';
import { createLongPollHandler } from '@trpc-longpoll/server';
import { appRouter } from '../../../../server/router';
import { APP_TRPC } from '../../../../shared/chat';

/*
 * An optional catch-all, not tRPC's usual `[trpc]`: polls are POSTs to
 * `/api/trpc` itself, which `[trpc]` does not match. Everything else (queries,
 * mutations, tRPC's batches) goes to tRPC's fetch adapter as usual.
 */
const longPoll = createLongPollHandler({ router: appRouter, endpoint: APP_TRPC });

function handler(req: Request): Promise<Response> {
  if (longPoll.matches(req)) return longPoll(req);
  return fetchRequestHandler({ endpoint: APP_TRPC, req, router: appRouter });
}

export { handler as GET, handler as POST };

// On Vercel, let a function outlive a hold (20 s by default); see docs/adapters.md.
export const maxDuration = 30;

// `next start` closes its server on SIGTERM and waits for open requests: answer the held polls
// now rather than at the end of their hold (the clients poll again, elsewhere).
process.once('SIGTERM', () => void longPoll.close());
