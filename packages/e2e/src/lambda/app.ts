/**
 * The function the Lambda harness runs: a user's handler module, written as
 * docs/adapters.md ("AWS Lambda behind API Gateway") tells users to write it
 * — tRPC's `awsLambdaRequestHandler` for queries and mutations, the long-poll
 * handler for polls, both on one router whose subscriptions follow a Redis
 * log every execution environment shares.
 *
 * Environment: REDIS_URL (the Redis log, over TCP) or UPSTASH_REDIS_REST_URL
 * and UPSTASH_REDIS_REST_TOKEN (the Upstash log, over HTTP), LOG_PREFIX, and
 * optionally HOLD_MS, IDLE_TIMEOUT_MS, BLOCK_MS, RECHECK_MS. Procedure starts and ends are
 * logged as JSON lines (`{"procedure":…}`), the way a function logs to
 * CloudWatch, so a test can tell which environment ran what.
 */
import { initTRPC } from '@trpc/server';
import { awsLambdaRequestHandler, type CreateAWSLambdaContextOptions } from '@trpc/server/adapters/aws-lambda';
import { createRedisEventLog } from '@trpc-longpoll/redis';
import type { EventLog } from '@trpc-longpoll/server';
import { createLongPollLambdaHandler, type LambdaEvent } from '@trpc-longpoll/server/adapters/aws-lambda';
import { createUpstashEventLog } from '@trpc-longpoll/upstash';
import type { Context } from 'aws-lambda';
import superjson from 'superjson';
import { z } from 'zod';

export interface Reading {
  room: string;
  n: number;
  at: Date;
}

type Topics = { [K: `room:${string}`]: Reading };

const env = process.env;
const number = (name: string) => (env[name] ? Number(env[name]) : undefined);

const serializer = { serialize: superjson.stringify, deserialize: superjson.parse };
// Made at init, outside the handler: it lives as long as the execution environment.
const log: EventLog<Topics> = env.UPSTASH_REDIS_REST_URL
  ? createUpstashEventLog<Topics>({
      redis: { url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN ?? '' },
      prefix: env.LOG_PREFIX,
      serializer,
    })
  : createRedisEventLog<Topics>({
      redis: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      prefix: env.LOG_PREFIX,
      serializer,
      blockMs: number('BLOCK_MS'),
      recheckMs: number('RECHECK_MS'),
    });

const lifecycle = (procedure: string, phase: 'start' | 'finally', room: string) =>
  console.log(JSON.stringify({ procedure, phase, room, pid: process.pid }));

const t = initTRPC.context<{ user: string | null }>().create({ transformer: superjson });

export const appRouter = t.router({
  head: t.procedure.input(z.object({ room: z.string() })).query(({ input }) => log.head(`room:${input.room}`)),
  /** Which environment answered: its process id. */
  environment: t.procedure.query(() => process.pid),
  publish: t.procedure
    .input(z.object({ room: z.string(), n: z.number() }))
    .mutation(({ input }) => log.publish(`room:${input.room}`, { room: input.room, n: input.n, at: new Date() })),
  onRoom: t.procedure
    .input(z.object({ room: z.string(), lastEventId: z.string().nullish() }))
    .subscription(async function* ({ input, signal }) {
      lifecycle('onRoom', 'start', input.room);
      try {
        yield* log.subscribe(`room:${input.room}`, { lastEventId: input.lastEventId, signal });
      } finally {
        lifecycle('onRoom', 'finally', input.room);
      }
    }),
});

export type LambdaAppRouter = typeof appRouter;

const createContext = ({ event }: CreateAWSLambdaContextOptions<LambdaEvent>) => ({
  user: (event.headers?.['x-user'] as string | undefined) ?? null,
});
const trpc = awsLambdaRequestHandler({ router: appRouter, createContext });
const longPoll = createLongPollLambdaHandler({
  router: appRouter,
  createContext,
  endpoint: '/trpc',
  holdMs: number('HOLD_MS'),
  idleTimeoutMs: number('IDLE_TIMEOUT_MS'),
});

export const handler = (event: LambdaEvent, context: Context) =>
  longPoll.matches(event) ? longPoll(event, context) : trpc(event, context);
