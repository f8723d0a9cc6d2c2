import { createNextApiHandler, type NextApiRequest, type NextApiResponse } from '@trpc/server/adapters/next';
import { createLongPollNextApiHandler } from '@trpc-longpoll/server/adapters/next';
import { appRouter } from '../../../server/router';
import { PAGES_TRPC } from '../../../shared/chat';

/*
 * The Pages Router: an optional catch-all API route, so `/api/pages-trpc`
 * itself (where polls go) reaches it as well as `/api/pages-trpc/send`.
 * Next's body parser stays on (its default): the long-poll handler takes
 * the body it parsed, and Next answers bodies over its `sizeLimit` with 413.
 */
const trpc = createNextApiHandler({ router: appRouter });
const longPoll = createLongPollNextApiHandler({ router: appRouter, endpoint: PAGES_TRPC });

export default async function handler(req: NextApiRequest, res: NextApiResponse): Promise<void> {
  if (longPoll.matches(req)) await longPoll(req, res);
  else await trpc(req, res);
}

export const maxDuration = 30;

process.once('SIGTERM', () => void longPoll.close());
