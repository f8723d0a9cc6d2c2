import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2, Context } from 'aws-lambda';

/** The Lambda context the runtime passes, with a deadline `timeoutMs` from now. */
export function lambdaContext(timeoutMs = 29_000): Context {
  const deadline = Date.now() + timeoutMs;
  const unused = () => {
    throw new Error('callback-style completion is not used by async handlers');
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'api',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:api',
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/api',
    logStreamName: '2026/11/24/[$LATEST]0123456789abcdef',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unused,
    fail: unused,
    succeed: unused,
  };
}

interface HttpRequest {
  method: string;
  /** Path under the API, such as `/trpc` or `/trpc/post.add`, with any query. */
  url: string;
  headers: Record<string, string>;
  body: string | null;
}

/** `/trpc/post.add` behind the `/trpc/{proxy+}` resource has `proxy: 'post.add'`; `/trpc` is its own resource. */
function proxyOf(pathname: string): string | null {
  const match = /^\/trpc\/(.+)$/.exec(pathname);
  return match ? decodeURIComponent(match[1]!) : null;
}

/** A REST API (payload 1.0) proxy-integration event, as API Gateway builds it. */
export function restApiEvent(request: HttpRequest, opts: { base64?: boolean } = {}): APIGatewayProxyEvent {
  const url = new URL(request.url, 'https://abc123.execute-api.eu-west-1.amazonaws.com');
  const proxy = proxyOf(url.pathname);
  const query = url.searchParams.size > 0 ? Object.fromEntries(url.searchParams) : null;
  const base64 = opts.base64 === true && request.body !== null;
  return {
    resource: proxy === null ? url.pathname : '/trpc/{proxy+}',
    path: url.pathname,
    httpMethod: request.method,
    headers: request.headers,
    multiValueHeaders: Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, [value]])),
    queryStringParameters: query,
    multiValueQueryStringParameters: query && Object.fromEntries(Object.entries(query).map(([name, value]) => [name, [value]])),
    pathParameters: proxy === null ? null : { proxy },
    stageVariables: null,
    body: base64 ? Buffer.from(request.body!).toString('base64') : request.body,
    isBase64Encoded: base64,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      authorizer: null,
      domainName: url.hostname,
      domainPrefix: 'abc123',
      protocol: 'HTTP/1.1',
      httpMethod: request.method,
      path: `/prod${url.pathname}`,
      stage: 'prod',
      requestId: randomUUID(),
      requestTimeEpoch: Date.now(),
      resourceId: 'r3s0urc3',
      resourcePath: proxy === null ? url.pathname : '/trpc/{proxy+}',
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
        sourceIp: '127.0.0.1',
        user: null,
        userAgent: request.headers['user-agent'] ?? null,
        userArn: null,
      },
    },
  };
}

/** An HTTP API (payload 2.0) event on a named stage, which HTTP APIs keep in `rawPath`. */
export function httpApiEvent(request: HttpRequest, opts: { base64?: boolean } = {}): APIGatewayProxyEventV2 {
  const url = new URL(request.url, 'https://abc123.execute-api.eu-west-1.amazonaws.com');
  const proxy = proxyOf(url.pathname);
  const method = request.method;
  const routeKey = proxy === null ? `${method} /trpc` : 'ANY /trpc/{proxy+}';
  const base64 = opts.base64 === true && request.body !== null;
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey,
    rawPath: `/prod${url.pathname}`,
    rawQueryString: url.search.slice(1),
    headers: Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name.toLowerCase(), value])),
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: url.hostname,
      domainPrefix: 'abc123',
      http: { method, path: `/prod${url.pathname}`, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: request.headers['user-agent'] ?? '' },
      requestId: randomUUID(),
      routeKey,
      stage: 'prod',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    isBase64Encoded: base64,
  };
  if (url.search) event.queryStringParameters = Object.fromEntries(url.searchParams);
  if (proxy !== null) event.pathParameters = { proxy };
  if (request.body !== null) event.body = base64 ? Buffer.from(request.body).toString('base64') : request.body;
  return event;
}

async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return chunks.length > 0 ? Buffer.concat(chunks).toString('utf8') : null;
}

/**
 * A stand-in for API Gateway: a real HTTP server that turns each request
 * into an event, invokes the Lambda handler once, and writes its buffered
 * result back — so the real client polls a Lambda the way it would in AWS.
 */
export function apiGateway<TEvent>(
  toEvent: (request: HttpRequest) => TEvent,
  invoke: (event: TEvent, context: Context) => Promise<{ statusCode?: number; headers?: Record<string, unknown>; body?: string; isBase64Encoded?: boolean }>,
  invocations: TEvent[] = [],
) {
  return createServer((req, res) => {
    void (async () => {
      const headers = Object.fromEntries(Object.entries(req.headers).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
      const event = toEvent({ method: req.method ?? 'GET', url: req.url ?? '/', headers, body: await readBody(req) });
      invocations.push(event);
      const result = await invoke(event, lambdaContext());
      res.writeHead(result.statusCode ?? 200, result.headers as Record<string, string>);
      res.end(result.isBase64Encoded ? Buffer.from(result.body ?? '', 'base64') : (result.body ?? ''));
    })().catch((cause: unknown) => {
      // API Gateway's answer to a failed invocation.
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: 'Internal server error', cause: String(cause) }));
    });
  });
}
