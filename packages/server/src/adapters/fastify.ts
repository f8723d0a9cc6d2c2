import type { AnyTRPCRouter } from '@trpc/server';
import type { NodeHTTPCreateContextFnOptions } from '@trpc/server/adapters/node-http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createLongPollCore } from '../core/pipeline';
import type { CoreResponse } from '../core/http';
import type { LongPollOptions } from '../core/options';
import type { LongPollStats } from '../core/stats';
import type { CreateContextOption } from './context';
import { abortOnClose, nodeHeader } from './shared';

/** Same shape as `fastifyTRPCPlugin`'s options, so one options object can serve both plugins. */
export interface LongPollFastifyPluginOptions<TRouter extends AnyTRPCRouter> {
  /** Where tRPC is served, such as `/trpc`; polls are POSTs to exactly this path. */
  prefix?: string;
  /** `router`, `createContext` (gets `{ req, res, info }` as in `fastifyTRPCPlugin`), `onError` and the long-poll options. */
  trpcOptions: LongPollOptions<TRouter, FastifyRequest> &
    CreateContextOption<TRouter, NodeHTTPCreateContextFnOptions<FastifyRequest, FastifyReply>>;
  /**
   * Called once, at registration, with the plugin's handler: a plugin has no return value to
   * carry `stats()`, and its decorations stay inside its own encapsulated context.
   */
  onHandler?: (handler: LongPollFastifyHandler) => void;
}

/** What the plugin hands `onHandler`, as the other adapters' handlers carry it. */
export interface LongPollFastifyHandler {
  /** A cheap snapshot: held polls, runs, budgets and counters since registration. */
  stats(): LongPollStats;
  /** Answers every held poll and stops every procedure; Fastify's `preClose` calls it too. */
  close(): Promise<void>;
}

function send(reply: FastifyReply, answer: CoreResponse): FastifyReply {
  if (answer.close) reply.header('connection', 'close');
  return reply.code(answer.status).headers(answer.headers).send(answer.body);
}

/**
 * A Fastify plugin serving polls at `POST {prefix}`. Register it beside `fastifyTRPCPlugin` with the same options:
 *
 * `server.register(fastifyLongPollPlugin, { prefix: '/trpc', trpcOptions: { router, createContext } })`
 */
export function fastifyLongPollPlugin<TRouter extends AnyTRPCRouter>(
  fastify: FastifyInstance,
  opts: LongPollFastifyPluginOptions<TRouter>,
  done: (err?: Error) => void,
): void {
  const core = createLongPollCore(opts.trpcOptions);
  opts.onHandler?.({ stats: core.stats, close: core.close });
  type CreateContextFn = (o: NodeHTTPCreateContextFnOptions<FastifyRequest, FastifyReply>) => unknown;
  const createContext = (opts.trpcOptions as { createContext?: CreateContextFn }).createContext;

  // This plugin's own encapsulated context: the body reaches the core unread, so its size limit,
  // deadline and content-type rule apply here as on every host, and the answers are the protocol's.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', (_req, payload, parsed) => parsed(null, payload));
  // Fastify's own refusals (a content type it cannot parse, say) come before the body is read:
  // like the core's, they close the connection rather than let Node drain what is still arriving.
  const refuse = (reply: FastifyReply, answer: CoreResponse) => send(reply, { ...answer, close: true });
  fastify.setErrorHandler((error: { statusCode?: number }, req, reply) => {
    if (error.statusCode === 415) return refuse(reply, core.errorResponse('UNSUPPORTED_MEDIA_TYPE', 'Polls are JSON: send content-type: application/json', req));
    if (error.statusCode !== undefined && error.statusCode < 500) return refuse(reply, core.errorResponse('BAD_REQUEST', 'The poll could not be read', req));
    return refuse(reply, core.errorResponse('INTERNAL_SERVER_ERROR', 'Internal server error', req));
  });
  // Before Fastify waits for in-flight requests, so held polls do not delay shutdown by a whole hold.
  fastify.addHook('preClose', async () => core.close());

  fastify.post('/', async (req, reply) => {
    const payload = req.body as AsyncIterable<Uint8Array> | undefined;
    const answer = await core.serve({
      method: req.method,
      url: req.url,
      host: nodeHeader(req.raw, 'host'),
      protocol: req.protocol,
      header: (name) => nodeHeader(req.raw, name),
      body: payload && Symbol.asyncIterator in Object(payload) ? { stream: payload } : { text: '' },
      signal: abortOnClose(reply.raw),
      req,
      createContext: (info) => (createContext ? createContext({ req, res: reply, info }) : {}),
    });
    return send(reply, answer);
  });

  done();
}
