/**
 * The server process: serves the bench router over every transport asked
 * for, one `node:http` server (one port) per transport so each one's
 * connections can be counted, plus a control port the load generator uses to
 * publish and to read the process's figures.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeHeapSnapshot } from 'node:v8';
import { applyWSSHandler } from '@trpc/server/adapters/ws';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { createLongPollNodeHandler } from '@trpc-longpoll/server';
import { WebSocketServer } from 'ws';
import { now, type BenchEvent, type PublishRequest, type ServerArgs, type ServerReady, type ServerStats, type Transport, SUPERJSON } from '../shared';
import { createFloorHandler } from './floor';
import { Hub } from './hub';
import { openLogSource, type LogAvailability } from './logSource';
import { openRedisSource, type RedisSource } from './redisSource';
import { createBenchRouter } from './router';
import { benchTelemetry } from './telemetry';

const args = JSON.parse(process.argv[2] ?? '{}') as ServerArgs;
const hub = new Hub();
const redisAvailability = await openRedisSource();
const redis: RedisSource | null = redisAvailability.status === 'ok' ? redisAvailability.source : null;
const logAvailability: LogAvailability | null = args.log ? await openLogSource(args.log) : null;
const logSource = logAvailability?.status === 'ok' ? logAvailability.source : null;
const router = createBenchRouter(hub, () => redis, () => logSource);

interface Counted {
  server: Server;
  sockets: number;
  answered: number;
  inflight: number;
}
const servers = new Map<Transport, Counted>();
const closers: (() => Promise<void> | void)[] = [];

function counted(transport: Transport, handler: (req: IncomingMessage, res: ServerResponse) => void): Counted {
  const entry: Counted = { server: null!, sockets: 0, answered: 0, inflight: 0 };
  entry.server = createServer((req, res) => {
    entry.inflight++;
    res.once('close', () => {
      entry.inflight--;
      entry.answered++;
    });
    handler(req, res);
  });
  entry.server.on('connection', (socket) => {
    entry.sockets++;
    socket.once('close', () => entry.sockets--);
  });
  // Long-polls are held for longer than the default timeouts allow for.
  entry.server.requestTimeout = 0;
  entry.server.headersTimeout = 0;
  entry.server.keepAliveTimeout = 60_000;
  entry.server.maxConnections = 50_000;
  servers.set(transport, entry);
  return entry;
}

for (const transport of args.transports) {
  if (transport === 'longpoll') {
    // Budgets sized for the idle scenario's 10 000 held polls on top of everything else, as an operator of a big box would.
    const budgets = { maxHeldPolls: 50_000, maxSessions: 50_000, maxRuns: 50_000 };
    // `--telemetry` (set in the environment by main.ts): the handler reports to the OpenTelemetry SDK.
    const telemetry = process.env.BENCH_TELEMETRY ? { telemetry: await benchTelemetry() } : {};
    const handler = createLongPollNodeHandler({ ...budgets, ...args.longPoll, ...telemetry, router, holdMs: args.holdMs });
    counted(transport, (req, res) => handler(req, res));
    closers.push(() => handler.close());
  } else if (transport === 'sse') {
    counted(transport, createHTTPHandler({ router }));
  } else if (transport === 'ws') {
    const entry = counted(transport, (_req, res) => {
      res.statusCode = 426;
      res.end();
    });
    const wss = new WebSocketServer({ server: entry.server });
    const wssHandler = applyWSSHandler({ wss, router });
    closers.push(() => {
      wssHandler.broadcastReconnectNotification();
      wss.close();
    });
  } else {
    const floor = createFloorHandler((path, topic, signal) => floorSource(path, topic, signal), args.holdMs);
    counted(transport, floor);
  }
}

async function* floorSource(path: string, topic: string, signal: AbortSignal): AsyncGenerator<{ id?: string; data: BenchEvent }> {
  if (path === 'redis') {
    if (!redis) return;
    for await (const [id, data] of redis.subscribe(topic, signal)) yield { id, data };
  } else if (path === 'tracked') {
    for await (const data of hub.subscribe(topic, signal)) yield { id: String(data.n), data };
  } else {
    for await (const data of hub.subscribe(topic, signal)) yield { data };
  }
}

function stats(): ServerStats {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  const result: ServerStats = {
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    cpuUs: cpu.user + cpu.system,
    sockets: {},
    answered: {},
    inflight: {},
    subscribers: hub.subscriberCounts(),
    redisSubscribers: redis?.subscribers ?? {},
    logSubscribers: logSource?.subscribers ?? {},
    logQueries: logSource?.queries() ?? 0,
  };
  for (const [transport, entry] of servers) {
    result.sockets[transport] = entry.sockets;
    result.answered[transport] = entry.answered;
    result.inflight[transport] = entry.inflight;
  }
  return result;
}

async function publish(request: PublishRequest): Promise<{ published: number; ms: number }> {
  const started = now();
  const padding = 'x'.repeat(request.pad);
  let published = 0;
  for (let n = 1; n <= request.count; ) {
    const end = Math.min(request.count, n + request.burst - 1);
    const writes: Promise<unknown>[] = [];
    for (; n <= end; n++) {
      for (const topic of request.topics) {
        const t = now();
        const event: BenchEvent = SUPERJSON ? { n, t, p: padding, d: new Date(t) } : { n, t, p: padding };
        if (request.source === 'redis') writes.push(redis!.publish(topic, event));
        else if (request.source === 'log') writes.push(logSource!.publish(topic, event));
        else hub.publish(topic, event);
        published++;
      }
    }
    await Promise.all(writes);
    if (n <= request.count) {
      await new Promise((resolve) => (request.intervalMs > 0 ? setTimeout(resolve, request.intervalMs) : setImmediate(resolve)));
    }
  }
  return { published, ms: now() - started };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let text = '';
  req.setEncoding('utf8');
  for await (const chunk of req) text += chunk;
  return text ? JSON.parse(text) : undefined;
}

const gc = (globalThis as { gc?: () => void }).gc;

const control = createServer((req, res) => {
  const reply = (value: unknown) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  const route = req.url ?? '/';
  void (async () => {
    if (route === '/clock') return reply({ now: now() });
    if (route === '/stats') return reply(stats());
    if (route === '/gc') {
      // Twice: the first pass can leave finalizer-held objects for the second.
      gc?.();
      gc?.();
      return reply(stats());
    }
    if (route.startsWith('/heapsnapshot?')) {
      gc?.();
      return reply({ file: writeHeapSnapshot(new URL(route, 'http://x').searchParams.get('file')!) });
    }
    if (route === '/publish') return reply(await publish((await readJson(req)) as PublishRequest));
    res.writeHead(404);
    res.end();
  })().catch((cause: unknown) => {
    res.writeHead(500);
    res.end(String(cause));
  });
});

// The load generator may stay quiet for a whole measuring window; a keep-alive socket closing under its next call would fail it.
control.keepAliveTimeout = 600_000;

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
  return (server.address() as AddressInfo).port;
}

const ports: ServerReady['ports'] = {};
for (const [transport, entry] of servers) ports[transport] = await listen(entry.server);
const ready: ServerReady = {
  type: 'ready',
  ports,
  control: await listen(control),
  redis: redisAvailability.status,
  ...(redisAvailability.status === 'ok' ? {} : { redisNote: redisAvailability.note }),
  ...(logAvailability ? { log: logAvailability.status, ...(logAvailability.status === 'ok' ? {} : { logNote: logAvailability.note }) } : {}),
};
process.send?.(ready);

async function shutdown() {
  await Promise.race([Promise.all(closers.map((close) => close())), new Promise((resolve) => setTimeout(resolve, 1_000))]);
  await redis?.close();
  await logSource?.close();
  // `--cpu-prof` writes its profile on a normal exit.
  process.exit(0);
}
process.on('message', (message) => {
  if (message === 'stop') void shutdown();
  if (message === 'clock') process.send!({ type: 'clock', now: now() });
});
process.on('disconnect', () => void shutdown());
