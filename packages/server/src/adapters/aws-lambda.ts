import type { AnyTRPCRouter } from '@trpc/server';
import type { CreateAWSLambdaContextOptions } from '@trpc/server/adapters/aws-lambda';
import type {
  APIGatewayProxyEvent,
  APIGatewayProxyEventV2,
  APIGatewayProxyResult,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';
import { createLongPollCore, type CoreResponse } from '../core/core';
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
  matches(event: TEvent): boolean;
  close(): Promise<void>;
}

function isV2(event: LambdaEvent): event is APIGatewayProxyEventV2 {
  return (event as { version?: string }).version === '2.0';
}

function requestOf(event: LambdaEvent): { method: string; path: string; url: URL } {
  if (isV2(event)) {
    const query = event.rawQueryString ? `?${event.rawQueryString}` : '';
    return {
      method: event.requestContext.http.method,
      path: event.rawPath,
      url: new URL(`https://${event.requestContext.domainName ?? 'localhost'}${event.rawPath}${query}`),
    };
  }
  const url = new URL(`https://${event.requestContext.domainName ?? event.headers?.['Host'] ?? event.headers?.['host'] ?? 'localhost'}${event.path}`);
  for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) if (value !== undefined) url.searchParams.append(name, value);
  return { method: event.httpMethod, path: event.path, url };
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
    const { method, url } = requestOf(event);
    if (method !== 'POST') {
      return toResult(core.errorResponse('METHOD_NOT_SUPPORTED', 'Polls are POST requests', event, { allow: 'POST' })) as LambdaResult<TEvent>;
    }
    const raw = event.body ?? '';
    const body = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
    if (Buffer.byteLength(body) > core.options.maxBodyBytes) {
      const message = `The poll body is larger than ${core.options.maxBodyBytes} bytes`;
      return toResult(core.errorResponse('PAYLOAD_TOO_LARGE', message, event)) as LambdaResult<TEvent>;
    }
    // Nobody tells a Lambda that the caller left; the invocation's deadline is the one limit it knows.
    const remaining = typeof context?.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : Infinity;
    const signal = Number.isFinite(remaining) ? AbortSignal.timeout(Math.max(0, remaining - margin)) : new AbortController().signal;
    const answer = await core.handle({
      body,
      signal,
      url,
      req: event,
      createContext: (info) => (createContext ? createContext({ event, context, info }) : {}),
    });
    return toResult(answer) as LambdaResult<TEvent>;
  };

  const matches = (event: TEvent): boolean => {
    const { method, path } = requestOf(event);
    if (method !== 'POST') return false;
    // HTTP APIs keep a named stage in the path (`/prod/trpc`); REST APIs drop it.
    const stage = event.requestContext.stage;
    return isPollPath(path, endpoint) || (!!stage && isPollPath(path, `${stage}/${trimSlashes(endpoint)}`));
  };

  return Object.assign(handler, { matches, close: core.close });
}
