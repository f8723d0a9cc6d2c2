import { createNextApiHandler, type NextApiRequest, type NextApiResponse } from '@trpc/server/adapters/next';
import { createLongPollNextApiHandler } from '@trpc-longpoll/server/adapters/next';
import { appRouter } from '../../../server/router';
import { PAGES_RAW_TRPC } from '../../../shared/chat';

/*
 * The Pages Router route again, with Next's body parser off: the long-poll
 * handler reads the body itself (its size limit, deadline and errors are the
 * protocol's), and tRPC's adapter reads the request stream for everything else.
 */
const trpc = createNextApiHandler({ router: appRouter });
const longPoll = createLongPollNextApiHandler({ router: appRouter, endpoint: PAGES_RAW_TRPC });

export default async function handler(req: NextApiRequest, res: NextApiResponse): Promise<void> {
  if (longPoll.matches(req)) await longPoll(req, res);
  else await trpc(req, res);
}

export const config = { api: { bodyParser: false } };
export const maxDuration = 30;

process.once('SIGTERM', () => void longPoll.close());
