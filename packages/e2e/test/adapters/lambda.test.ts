import type { CreateAWSLambdaContextOptions } from '@trpc/server/adapters/aws-lambda';
import { awsLambdaRequestHandler } from '@trpc/server/adapters/aws-lambda';
import { createLongPollLambdaHandler, type LambdaEvent } from '@trpc-longpoll/server/adapters/aws-lambda';
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2 } from 'aws-lambda';
import superjson from 'superjson';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestRouter, listen } from '../../src';
import { apiGateway, httpApiEvent, lambdaContext, restApiEvent } from './lambda-events';
import { contextSpy, deliversThroughAdapter } from './support';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const json = { 'content-type': 'application/json' };

interface PollAnswer {
  results: Record<string, { run?: string; events?: { seq: number; id?: string; data?: any }[]; end?: unknown }>;
}

/** One poll as the client would send it: the client's whole set, with each subscription's cursor. */
function pollRequest(n: number, cursor?: { run: string; seq: number; lastEventId?: string }) {
  const subscription = { key: 'feed', path: 'post.onAdd', ...(cursor ? { cursor } : {}) };
  return { method: 'POST', url: '/trpc', headers: json, body: JSON.stringify({ v: 1, client: 'phone', poll: n, subscriptions: [subscription] }) };
}

const formats = [
  { name: 'REST API (payload 1.0, base64 body)', event: (r: Parameters<typeof restApiEvent>[0]) => restApiEvent(r, { base64: true }) },
  { name: 'HTTP API (payload 2.0)', event: (r: Parameters<typeof httpApiEvent>[0]) => httpApiEvent(r) },
] as const;

describe.each(formats)('AWS Lambda adapter, $name', ({ event: toEvent }) => {
  it('delivers a subscription across successive invocations, and from a cold instance', async () => {
    const fixture = createTestRouter();
    const spy = contextSpy<CreateAWSLambdaContextOptions<LambdaEvent>>();
    const warm = createLongPollLambdaHandler({ router: fixture.router, createContext: spy.createContext });
    cleanups.push(warm.close);

    const firstEvent = toEvent(pollRequest(1));
    const first = await warm(firstEvent, lambdaContext());
    expect(first).toMatchObject({ statusCode: 200, isBase64Encoded: false, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
    const run = (JSON.parse(first.body!) as PollAnswer).results.feed!.run!;
    expect(run).toEqual(expect.any(String));

    const args = spy.polls[0]!;
    expect(Object.keys(args).sort()).toEqual(['context', 'event', 'info']);
    expect(args.event).toBe(firstEvent);
    expect(args.context.functionName).toBe('api');

    // Published while no invocation runs; the next poll collects it.
    fixture.feed.publish({ text: 'while frozen', at: new Date(1) });
    const second = JSON.parse((await warm(toEvent(pollRequest(2, { run, seq: 0 })), lambdaContext())).body!) as PollAnswer;
    expect(second.results.feed!.events!.map((e) => [e.seq, e.id])).toEqual([[1, '1']]);
    expect(superjson.deserialize(second.results.feed!.events![0]!.data)).toEqual({ text: 'while frozen', at: new Date(1) });

    // The next poll lands on another instance, which knows nothing: the cursor's lastEventId resumes it.
    fixture.feed.publish({ text: 'elsewhere', at: new Date(2) });
    const cold = createLongPollLambdaHandler({ router: fixture.router, createContext: () => ({ user: null }) });
    cleanups.push(cold.close);
    const third = JSON.parse((await cold(toEvent(pollRequest(3, { run, seq: 1, lastEventId: '1' })), lambdaContext())).body!) as PollAnswer;
    expect(third.results.feed!.run).not.toBe(run);
    expect(third.results.feed!.events!.map((e) => e.id)).toEqual(['2']);
  });

  it('ends the hold before the invocation would time out', async () => {
    const fixture = createTestRouter();
    const handler = createLongPollLambdaHandler({ router: fixture.router, createContext: () => ({ user: null }) });
    cleanups.push(handler.close);
    const first = JSON.parse((await handler(toEvent(pollRequest(1)), lambdaContext())).body!) as PollAnswer;
    // Nothing new, so the poll is held: for 20 s, unless the 1.5 s left to the invocation cuts it short.
    const held = await handler(toEvent(pollRequest(2, { run: first.results.feed!.run!, seq: 0 })), lambdaContext(1_500));
    expect(held.statusCode).toBe(200);
    expect(JSON.parse(held.body!)).toEqual({ v: 1, results: {} });
  });

  it('tells polls from other requests and refuses what is not a poll', async () => {
    const fixture = createTestRouter();
    const handler = createLongPollLambdaHandler({ router: fixture.router, endpoint: '/trpc', createContext: () => ({ user: null }) });
    cleanups.push(handler.close);

    expect(handler.matches(toEvent(pollRequest(1)))).toBe(true);
    expect(handler.matches(toEvent({ method: 'POST', url: '/trpc/post.add', headers: json, body: '{}' }))).toBe(false);
    expect(handler.matches(toEvent({ method: 'GET', url: '/trpc', headers: {}, body: null }))).toBe(false);

    const get = await handler(toEvent({ method: 'GET', url: '/trpc', headers: {}, body: null }), lambdaContext());
    expect(get.statusCode).toBe(405);
    expect(get.headers).toMatchObject({ allow: 'POST' });
    const tooBig = await handler(toEvent({ method: 'POST', url: '/trpc', headers: json, body: 'x'.repeat(1024 * 1024 + 1) }), lambdaContext());
    expect(tooBig.statusCode).toBe(413);
  });

  it('serves the real client through a gateway, one invocation per request, beside awsLambdaRequestHandler', async () => {
    const fixture = createTestRouter();
    const spy = contextSpy<CreateAWSLambdaContextOptions<LambdaEvent>>();
    const opts = { router: fixture.router, createContext: spy.createContext };
    const trpc = awsLambdaRequestHandler(opts);
    const longPoll = createLongPollLambdaHandler({ ...opts, endpoint: '/trpc' });
    const invocations: LambdaEvent[] = [];
    const handler = (event: LambdaEvent, context: ReturnType<typeof lambdaContext>) =>
      longPoll.matches(event) ? longPoll(event, context) : trpc(event, context);
    const gateway = await listen(apiGateway(toEvent, handler, invocations));
    cleanups.push(gateway.close, longPoll.close);

    await deliversThroughAdapter(`${gateway.url}/trpc`, fixture);
    const polls = invocations.filter((e) => longPoll.matches(e));
    // Each answer ends its invocation: the events arrived over several polls, not one stream.
    expect(polls.length).toBeGreaterThanOrEqual(2);
    expect(spy.polls.every((args) => polls.includes(args.event))).toBe(true);
  });
});

describe('AWS Lambda adapter types', () => {
  it('answers each payload version with its own result type', async () => {
    const fixture = createTestRouter();
    const v1 = createLongPollLambdaHandler<typeof fixture.router, APIGatewayProxyEvent>({ router: fixture.router, createContext: () => ({ user: null }) });
    const v2 = createLongPollLambdaHandler<typeof fixture.router, APIGatewayProxyEventV2>({ router: fixture.router, createContext: () => ({ user: null }) });
    cleanups.push(v1.close, v2.close);
    const r1 = await v1(restApiEvent(pollRequest(1)), lambdaContext());
    const r2 = await v2(httpApiEvent(pollRequest(1)), lambdaContext());
    expect(typeof r1.body).toBe('string');
    expect(r2.statusCode).toBe(200);
  });
});
