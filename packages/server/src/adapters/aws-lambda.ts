import type { AnyTRPCRouter } from '@trpc/server';
import type { CreateAWSLambdaContextOptions } from '@trpc/server/adapters/aws-lambda';
import type {
  APIGatewayProxyEvent,
  APIGatewayProxyEventV2,
  APIGatewayProxyResult,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';
import { createLongPollCore, type LongPollStats } from '../core/pipeline';
import type { CoreResponse } from '../core/http';
import type { LongPollOptions } from '../core/options';
import type { CreateContextOption } from './context';
import { isPollPath, trimSlashes } from './shared';

/** API Gateway REST API (payload 1.0) or HTTP API (payload 2.0) events, as tRPC's Lambda adapter takes them. */
export type LambdaEvent = APIGatewayProxyEvent | APIGatewayProxyEventV2;

export type LambdaResult<TEvent extends LambdaEvent> = TEvent extends APIGatewayProxyEventV2
  ? APIGatewayProxyStructuredResultV2
  : APIGatewayProxyResult;

export type LongPollLambdaOptions<TRouter extends AnyTRPCRouter, TEvent extends LambdaEvent = LambdaEvent> = LongPollOptions<
  TRouter,
  TEvent
> &
  CreateContextOption<TRouter, CreateAWSLambdaContextOptions<TEvent>> & {
    /** The path polls are POSTed to, such as `/trpc`; used by `matches` only. Default `/`. */
    endpoint?: string;
    /**
     * A poll is answered this long before the invocation would time out, in ms, so a
     * function timeout shorter than the hold ends the hold instead of the invocation. Default 1 000.
     */
    timeoutMarginMs?: number;
  };

export interface LongPollLambdaHandler<TEvent extends LambdaEvent> {
  /** Answers a poll, buffered (no response streaming): API Gateway cannot stream, which is why SSE cannot work there. */
  (event: TEvent, context: Context): Promise<LambdaResult<TEvent>>;
  /** Whether `event` is a poll (a POST to `endpoint`), so it can be routed here and the rest to `awsLambdaRequestHandler`. */
  /** Never throws, whatever the event holds. */
  matches(event: TEvent): boolean;
  close(): Promise<void>;
  /** A cheap snapshot: polls held, runs by path, buffers, budgets and counters since start (see the README's Stats). */
  stats(): LongPollStats;
}

function isV2(event: LambdaEvent): event is APIGatewayProxyEventV2 {
  return (event as { version?: string }).version === '2.0';
}

/** Method, path and request target of an event; nothing in it is trusted to be well formed. */
function requestOf(event: LambdaEvent): { method: string; path: string; target: string; host: string | undefined } {
  const headers = (event.headers ?? {}) as Record<string, string | undefined>;
  const host = event.requestContext?.domainName ?? headers['Host'] ?? headers['host'];
  if (isV2(event)) {
    const path = String(event.rawPath ?? '/');
    return { method: String(event.requestContext?.http?.method ?? ''), path, target: event.rawQueryString ? `${path}?${event.rawQueryString}` : path, host };
  }
  const path = String(event.path ?? '/');
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) if (value !== undefined) query.append(name, String(value));
  const search = query.toString();
  return { method: String(event.httpMethod ?? ''), path, target: search ? `${path}?${search}` : path, host };
}

/** API Gateway passes header names as the client wrote them (REST) or lower-cased (HTTP API). */
function headerOf(event: LambdaEvent, name: string): string | undefined {
  const headers = (event.headers ?? {}) as Record<string, string | undefined>;
  if (headers[name] !== undefined) return headers[name];
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value;
  return undefined;
}

function toResult(answer: CoreResponse): APIGatewayProxyResult & APIGatewayProxyStructuredResultV2 {
  return { statusCode: answer.status, headers: answer.headers, body: answer.body, isBase64Encoded: false };
}

/**
 * The long-poll handler for AWS Lambda behind API Gateway. `createContext`
 * gets `{ event, context, info }` like tRPC's `awsLambdaRequestHandler`.
 * Keep `holdMs` under the gateway's integration timeout (29 s for REST APIs,
 * 30 s for HTTP APIs); the default 20 s is.
 */
export function createLongPollLambdaHandler<TRouter extends AnyTRPCRouter, TEvent extends LambdaEvent = LambdaEvent>(
  opts: LongPollLambdaOptions<TRouter, TEvent>,
): LongPollLambdaHandler<TEvent> {
  const core = createLongPollCore(opts);
  const endpoint = opts.endpoint ?? '/';
  const margin = opts.timeoutMarginMs ?? 1_000;
  const createContext = (opts as { createContext?: (o: CreateAWSLambdaContextOptions<TEvent>) => unknown }).createContext;

  const handler = async (event: TEvent, context: Context): Promise<LambdaResult<TEvent>> => {
    const { method, target, host } = requestOf(event);
    const raw = typeof event.body === 'string' ? event.body : '';
    // Nobody tells a Lambda that the caller left; the invocation's deadline is the one limit it knows.
    const remaining = typeof context?.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : Infinity;
    const signal = Number.isFinite(remaining) ? AbortSignal.timeout(Math.max(0, remaining - margin)) : new AbortController().signal;
    const answer = await core.serve({
      method,
      url: target,
      host,
      protocol: 'https',
      header: (name) => headerOf(event, name),
      body: { text: event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw },
      signal,
      req: event,
      createContext: (info) => (createContext ? createContext({ event, context, info }) : {}),
    });
    return toResult(answer) as LambdaResult<TEvent>;
  };

  const matches = (event: TEvent): boolean => {
    const { method, path } = requestOf(event);
    if (method !== 'POST') return false;
    // HTTP APIs keep a named stage in the path (`/prod/trpc`); REST APIs drop it.
    const stage = event.requestContext?.stage;
    return isPollPath(path, endpoint) || (!!stage && isPollPath(path, `${stage}/${trimSlashes(endpoint)}`));
  };

  return Object.assign(handler, { matches, close: core.close, stats: core.stats });
}
