import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2 } from 'aws-lambda';

/** API Gateway's two Lambda proxy payloads: REST APIs send 1.0, HTTP APIs 2.0 (by default). */
export type PayloadVersion = 'v1' | 'v2';

/** A request as the gateway received it, the stage already taken off the path. */
export interface GatewayRequest {
  method: string;
  /** Path under the stage, such as `/trpc` or `/trpc/post.add`. */
  path: string;
  /** The query string without `?`, as the client wrote it. */
  query: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  sourceIp: string;
}

/** A route of the API: `POST /trpc` or `ANY /trpc/{proxy+}`. */
export interface Route {
  method: string;
  /** A resource path; a last segment `{name+}` is a greedy path parameter. */
  resource: string;
}

export const STAGE = 'prod';
export const DOMAIN = 'abc123.execute-api.eu-west-1.amazonaws.com';

/** The route a request matches and its path parameters, or null (the gateway answers it without a Lambda). */
export function matchRoute(routes: readonly Route[], method: string, path: string): { route: Route; params: Record<string, string> | null } | null {
  for (const route of routes) {
    if (route.method !== 'ANY' && route.method !== method) continue;
    const greedy = /^(.*)\/\{(\w+)\+\}$/.exec(route.resource);
    if (!greedy) {
      if (route.resource === path) return { route, params: null };
      continue;
    }
    const [, base, name] = greedy as unknown as [string, string, string];
    if (path.startsWith(`${base}/`) && path.length > base.length + 1) {
      return { route, params: { [name]: decodeURIComponent(path.slice(base.length + 1)) } };
    }
  }
  return null;
}

/** Headers as strings: REST APIs keep the last value of a repeated header in `headers`, every value in `multiValueHeaders`. */
function headerLists(headers: IncomingHttpHeaders): [string, string[]][] {
  return Object.entries(headers).flatMap(([name, value]) =>
    value === undefined ? [] : [[name, Array.isArray(value) ? value : [value]] as [string, string[]]],
  );
}

function queryLists(query: string): [string, string[]][] {
  const lists = new Map<string, string[]>();
  for (const [name, value] of new URLSearchParams(query)) lists.set(name, [...(lists.get(name) ?? []), value]);
  return [...lists];
}

function isText(headers: IncomingHttpHeaders): boolean {
  const type = String(headers['content-type'] ?? '');
  return type === '' || /^(text\/|application\/(json|x-www-form-urlencoded|xml|javascript))/i.test(type);
}

/** A REST API (payload 1.0) proxy-integration event: the stage is not in `path`, only in `requestContext.path`. */
export function restApiEvent(request: GatewayRequest, matched: { route: Route; params: Record<string, string> | null }): APIGatewayProxyEvent {
  const headers = headerLists(request.headers);
  const query = queryLists(request.query);
  // Without binary media types configured, a REST API passes bodies as text.
  const body = request.body.length > 0 ? request.body.toString('utf8') : null;
  const now = Date.now();
  return {
    resource: matched.route.resource,
    path: request.path,
    httpMethod: request.method,
    headers: Object.fromEntries(headers.map(([name, values]) => [name, values.at(-1)!])),
    multiValueHeaders: Object.fromEntries(headers),
    queryStringParameters: query.length > 0 ? Object.fromEntries(query.map(([name, values]) => [name, values.at(-1)!])) : null,
    multiValueQueryStringParameters: query.length > 0 ? Object.fromEntries(query) : null,
    pathParameters: matched.params,
    stageVariables: null,
    body,
    isBase64Encoded: false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      authorizer: null,
      domainName: DOMAIN,
      domainPrefix: 'abc123',
      protocol: 'HTTP/1.1',
      httpMethod: request.method,
      path: `/${STAGE}${request.path}`,
      stage: STAGE,
      requestId: randomUUID(),
      requestTimeEpoch: now,
      resourceId: 'r3s0urc3',
      resourcePath: matched.route.resource,
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: request.sourceIp,
        user: null,
        userAgent: (request.headers['user-agent'] as string | undefined) ?? null,
        userArn: null,
      },
    },
  };
}

/**
 * An HTTP API (payload 2.0) event on a named stage, which stays in `rawPath`:
 * header names lower-case, repeated headers joined with commas, cookies apart,
 * binary bodies base64.
 */
export function httpApiEvent(request: GatewayRequest, matched: { route: Route; params: Record<string, string> | null }): APIGatewayProxyEventV2 {
  const routeKey = `${matched.route.method} ${matched.route.resource}`;
  const cookies = headerLists(request.headers).find(([name]) => name === 'cookie')?.[1].flatMap((line) => line.split(/;\s*/)) ?? [];
  const headers = headerLists(request.headers).filter(([name]) => name !== 'cookie');
  const query = queryLists(request.query);
  const rawPath = `/${STAGE}${request.path}`;
  const now = new Date();
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString: request.query,
    headers: Object.fromEntries(headers.map(([name, values]) => [name.toLowerCase(), values.join(',')])),
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: DOMAIN,
      domainPrefix: 'abc123',
      http: { method: request.method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: request.sourceIp, userAgent: String(request.headers['user-agent'] ?? '') },
      requestId: randomUUID(),
      routeKey,
      stage: STAGE,
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: false,
  };
  if (cookies.length > 0) event.cookies = cookies;
  if (query.length > 0) event.queryStringParameters = Object.fromEntries(query.map(([name, values]) => [name, values.join(',')]));
  if (matched.params) event.pathParameters = matched.params;
  if (request.body.length > 0) {
    const text = isText(request.headers);
    event.isBase64Encoded = !text;
    event.body = text ? request.body.toString('utf8') : request.body.toString('base64');
  }
  return event;
}

/** What a handler may return; anything else is a malformed Lambda response (`502`). */
export interface LambdaProxyResult {
  statusCode?: number;
  headers?: Record<string, string | number | boolean>;
  multiValueHeaders?: Record<string, (string | number | boolean)[]>;
  cookies?: string[];
  body?: string;
  isBase64Encoded?: boolean;
}

/** The HTTP answer the gateway writes for a handler's result, or null if the result is malformed. */
export function httpAnswer(
  version: PayloadVersion,
  result: unknown,
): { status: number; headers: [string, string][]; body: Buffer } | null {
  // An HTTP API takes a bare value (not an object with statusCode) as a 200 JSON body.
  if (version === 'v2' && (typeof result !== 'object' || result === null || !('statusCode' in result))) {
    const body = typeof result === 'string' ? result : JSON.stringify(result ?? null);
    return { status: 200, headers: [['content-type', 'application/json']], body: Buffer.from(body) };
  }
  if (typeof result !== 'object' || result === null) return null;
  const r = result as LambdaProxyResult;
  const status = r.statusCode ?? (version === 'v2' ? 200 : NaN);
  if (!Number.isInteger(status) || status < 100 || status > 599) return null;
  const headers: [string, string][] = [];
  for (const [name, value] of Object.entries(r.headers ?? {})) headers.push([name, String(value)]);
  for (const [name, values] of Object.entries(r.multiValueHeaders ?? {})) for (const value of values) headers.push([name, String(value)]);
  if (version === 'v2') for (const cookie of r.cookies ?? []) headers.push(['set-cookie', cookie]);
  const text = r.body ?? '';
  return { status, headers, body: r.isBase64Encoded ? Buffer.from(text, 'base64') : Buffer.from(text) };
}
