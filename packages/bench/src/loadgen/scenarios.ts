import { now, type BenchEvent, type LogKind, type Source, type Transport } from '../shared';
import { createBenchClient, type BenchClient, type BenchPath } from './clients';
import { Control, waitUntil } from './control';

/** Figures one scenario measured for one transport, by metric name. */
export type Figures = Record<string, number>;

export interface ScenarioParams {
  latency: { warmup: number; count: number; intervalMs: number };
  throughput: { warmup: number; count: number; burst: number };
  fanout: { clients: number; warmup: number; count: number; burst: number; intervalMs: number };
  many: { subscriptions: number; warmup: number; count: number; burst: number };
  /** `windowMs`: how long CPU is measured for SSE and WebSocket; long-polls are measured over a whole hold. */
  idle: { polls: number; holdMs: number; windowMs: number; batch: number };
  redis: { warmup: number; latencyCount: number; intervalMs: number; count: number; burst: number };
  /** The log scenarios: `burst` events published at once (concurrent publishes), then the next burst. */
  logs: { warmup: number; count: number; burst: number };
  /** Characters of padding per event. */
  pad: number;
  /** A delivery still incomplete after this long fails the transport's scenario. */
  deliverTimeoutMs: number;
}

export const SCENARIOS = ['latency', 'throughput', 'throughputTracked', 'fanout', 'many', 'idle', 'redis', 'logMemory', 'logRedis', 'logPostgres', 'logUpstash'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** The log scenarios: one event log each, long-poll only (they compare logs, not transports). */
export const LOG_SCENARIOS: Partial<Record<ScenarioName, LogKind>> = { logMemory: 'memory', logRedis: 'redis', logPostgres: 'postgres', logUpstash: 'upstash' };

export interface ScenarioContext {
  transport: Transport;
  port: number;
  control: Control;
  params: ScenarioParams;
}

/**
 * Receives events and records each one's publish → `onData` delay. The
 * publisher stamped the event with the server process's `now()`; both clocks
 * count from the same wall-clock reading (the orchestrator checks how well
 * they agree, see `clockSkew` in main.ts).
 */
class Receiver {
  received = 0;
  private latencies: number[] = [];
  recording = false;

  readonly onData = (event: BenchEvent) => {
    this.received++;
    if (this.recording) this.latencies.push(now() - event.t);
  };

  reset(): void {
    this.received = 0;
    this.latencies = [];
  }

  percentile(p: number): number {
    const sorted = Float64Array.from(this.latencies).sort();
    if (sorted.length === 0) return NaN;
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
  }
}

const onError = (error: unknown) => {
  console.error(`[loadgen] subscription error: ${(error as Error)?.message ?? error}`);
};

function topicCount(topics: Record<string, number>, topic: string): number {
  return topics[topic] ?? 0;
}

interface Delivery {
  elapsedMs: number;
  /** CPU time per delivered event, in µs, of the server process and of this one. */
  serverCpuUs: number;
  clientCpuUs: number;
  /** Long-polls: events delivered per poll answered. */
  eventsPerResponse: number | undefined;
  /** How long the server took to publish (store) every event, in ms. */
  publishMs: number;
  /** Round trips the log scenario's log made to its store meanwhile. */
  logQueries: number;
}

/** Publishes `count` events per topic and waits until the receiver has `expected` more. */
async function deliver(
  ctx: ScenarioContext,
  receiver: Receiver,
  expected: number,
  request: { source?: Source; topics: string[]; count: number; burst: number; intervalMs: number },
): Promise<Delivery> {
  const before = await ctx.control.stats();
  const clientBefore = process.cpuUsage();
  const start = now();
  const target = receiver.received + expected;
  const { ms: publishMs } = await ctx.control.publish({ source: request.source ?? 'hub', pad: ctx.params.pad, ...request });
  await waitUntil(
    () => receiver.received >= target,
    () => `${expected} events over ${ctx.transport} (${receiver.received - target + expected} arrived)`,
    ctx.params.deliverTimeoutMs,
  );
  const elapsedMs = now() - start;
  const client = process.cpuUsage(clientBefore);
  const after = await ctx.control.stats();
  const responses = (after.answered[ctx.transport] ?? 0) - (before.answered[ctx.transport] ?? 0);
  return {
    elapsedMs,
    serverCpuUs: (after.cpuUs - before.cpuUs) / expected,
    clientCpuUs: (client.user + client.system) / expected,
    eventsPerResponse: isPolling(ctx.transport) && responses > 0 ? expected / responses : undefined,
    publishMs,
    logQueries: after.logQueries - before.logQueries,
  };
}

function isPolling(transport: Transport): boolean {
  return transport === 'longpoll' || transport === 'floor';
}

/** Events/s and the CPU each side spent per event. */
function rates(delivery: Delivery, events: number): Figures {
  return {
    eventsPerSec: (events / delivery.elapsedMs) * 1000,
    serverCpuUsPerEvent: delivery.serverCpuUs,
    clientCpuUsPerEvent: delivery.clientCpuUs,
    ...(delivery.eventsPerResponse === undefined ? {} : { eventsPerResponse: delivery.eventsPerResponse }),
  };
}

async function withClients<T>(count: number, ctx: ScenarioContext, body: (clients: BenchClient[]) => Promise<T>): Promise<T> {
  const clients = Array.from({ length: count }, () => createBenchClient(ctx.transport, ctx.port));
  try {
    return await body(clients);
  } finally {
    await Promise.all(clients.map((client) => client.close()));
  }
}

async function latency(ctx: ScenarioContext): Promise<Figures> {
  const { warmup, count, intervalMs } = ctx.params.latency;
  const topic = `${ctx.transport}:latency`;
  return withClients(1, ctx, async ([client]) => {
    const receiver = new Receiver();
    client!.subscribe('events', topic, receiver.onData, onError);
    await ctx.control.until((s) => topicCount(s.subscribers, topic) === 1, 'the subscription');
    await deliver(ctx, receiver, warmup, { topics: [topic], count: warmup, burst: 1, intervalMs });
    receiver.recording = true;
    await deliver(ctx, receiver, count, { topics: [topic], count, burst: 1, intervalMs });
    return { p50Ms: receiver.percentile(50), p99Ms: receiver.percentile(99) };
  });
}

async function throughput(ctx: ScenarioContext, path: BenchPath = 'events'): Promise<Figures> {
  const { warmup, count, burst } = ctx.params.throughput;
  const topic = `${ctx.transport}:throughput`;
  return withClients(1, ctx, async ([client]) => {
    const receiver = new Receiver();
    client!.subscribe(path, topic, receiver.onData, onError);
    await ctx.control.until((s) => topicCount(s.subscribers, topic) === 1, 'the subscription');
    await deliver(ctx, receiver, warmup, { topics: [topic], count: warmup, burst, intervalMs: 0 });
    return rates(await deliver(ctx, receiver, count, { topics: [topic], count, burst, intervalMs: 0 }), count);
  });
}

async function fanout(ctx: ScenarioContext): Promise<Figures> {
  const { clients: n, warmup, count, burst, intervalMs } = ctx.params.fanout;
  const topic = `${ctx.transport}:fanout`;
  return withClients(n, ctx, async (clients) => {
    const receiver = new Receiver();
    for (const client of clients) client.subscribe('events', topic, receiver.onData, onError);
    await ctx.control.until((s) => topicCount(s.subscribers, topic) === n, `${n} subscriptions`);
    await deliver(ctx, receiver, warmup * n, { topics: [topic], count: warmup, burst, intervalMs });
    receiver.recording = true;
    const delivery = await deliver(ctx, receiver, count * n, { topics: [topic], count, burst, intervalMs });
    return { ...rates(delivery, count * n), p50Ms: receiver.percentile(50), p99Ms: receiver.percentile(99) };
  });
}

async function many(ctx: ScenarioContext): Promise<Figures> {
  const { subscriptions, warmup, count, burst } = ctx.params.many;
  const topics = Array.from({ length: subscriptions }, (_, i) => `${ctx.transport}:many:${i}`);
  return withClients(1, ctx, async ([client]) => {
    const receiver = new Receiver();
    for (const topic of topics) client!.subscribe('events', topic, receiver.onData, onError);
    await ctx.control.until((s) => topics.every((topic) => topicCount(s.subscribers, topic) === 1), `${subscriptions} subscriptions`);
    await deliver(ctx, receiver, warmup * subscriptions, { topics, count: warmup, burst, intervalMs: 0 });
    // Settled: re-polls triggered by the subscribe calls are over.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const held = await ctx.control.stats();
    const delivery = await deliver(ctx, receiver, count * subscriptions, { topics, count, burst, intervalMs: 0 });
    return {
      // Requests the server holds open; a WebSocket, once upgraded, is no request but one socket.
      heldRequests: ctx.transport === 'ws' ? (held.sockets.ws ?? NaN) : (held.inflight[ctx.transport] ?? NaN),
      connections: held.sockets[ctx.transport] ?? NaN,
      ...rates(delivery, count * subscriptions),
    };
  });
}

/**
 * Server memory per held request: the growth from a warm server with a few
 * clients to one with all of them, after a full GC each time. CPU: what the
 * server spends while every client just waits.
 */
async function idle(ctx: ScenarioContext): Promise<Figures> {
  const { polls, windowMs, batch } = ctx.params.idle;
  const topic = `${ctx.transport}:idle`;
  const warm = Math.max(1, Math.round(polls / 100));
  const clients: BenchClient[] = [];
  const receiver = new Receiver();
  const t0 = Date.now();
  const progress = (what: string) => {
    if (process.env.BENCH_VERBOSE) console.error(`[idle ${ctx.transport}] ${what} after ${Date.now() - t0} ms`);
  };
  const connect = async (total: number) => {
    while (clients.length < total) {
      const upTo = Math.min(total, clients.length + batch);
      while (clients.length < upTo) {
        const client = createBenchClient(ctx.transport, ctx.port);
        client.subscribe('events', topic, receiver.onData, onError);
        clients.push(client);
      }
      const s = await ctx.control.until((s) => topicCount(s.subscribers, topic) >= upTo, `${upTo} subscriptions`, 60_000);
      progress(`${upTo} subscribed (answered ${s.answered[ctx.transport]}, held ${s.inflight[ctx.transport]}, cpu ${Math.round(s.cpuUs / 1000)} ms)`);
    }
  };
  // A WebSocket is no request once upgraded; the others hold one request per client (long-polls: nearly always).
  const heldRequests = ctx.transport === 'ws' ? 0 : 0.98;
  const settled = () =>
    ctx.control.until(
      (s) => (s.inflight[ctx.transport] ?? 0) >= clients.length * heldRequests && (s.sockets[ctx.transport] ?? 0) >= clients.length,
      'held requests',
      60_000,
    );

  await connect(warm);
  await settled();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const before = await ctx.control.gcStats();
  progress('warm');
  await connect(polls);
  progress('connected');
  await settled();
  progress('settled');
  await new Promise((resolve) => setTimeout(resolve, 500));
  const after = await ctx.control.gcStats();
  if (process.env.BENCH_HEAP_SNAPSHOTS) {
    // `--heap-snapshots`: what a held request keeps alive, for reading in DevTools or `heap-summary.ts`.
    const dir = process.env.BENCH_HEAP_SNAPSHOTS;
    progress(`snapshot ${(await ctx.control.heapSnapshot(`${dir}/idle-${ctx.transport}-${polls}.heapsnapshot`)).file}`);
  }

  // A long-poll's window spans a whole hold (and its jitter of up to hold/16), so every client cycles in it.
  const window = isPolling(ctx.transport) ? ctx.params.idle.holdMs * (17 / 16) + 1_000 : windowMs;
  const start = await ctx.control.stats();
  await new Promise((resolve) => setTimeout(resolve, window));
  const end = await ctx.control.stats();
  const added = polls - warm;
  const cpu = end.cpuUs - start.cpuUs;
  const cycles = (end.answered[ctx.transport] ?? 0) - (start.answered[ctx.transport] ?? 0);
  const figures: Figures = {
    connections: after.sockets[ctx.transport] ?? NaN,
    rssPerConnKB: (after.rss - before.rss) / added / 1024,
    heapPerConnKB: (after.heapUsed - before.heapUsed) / added / 1024,
    cpuUsPerConnSec: cpu / polls / (window / 1000),
  };
  // Only long-polls cycle: SSE and WebSocket hold one request or socket for good.
  if (isPolling(ctx.transport)) figures.cpuUsPerCycle = cycles > 0 ? cpu / cycles : NaN;
  // The process exits after this scenario, which closes every connection at once.
  return figures;
}

async function redis(ctx: ScenarioContext): Promise<Figures> {
  const { warmup, latencyCount, intervalMs, count, burst } = ctx.params.redis;
  const topic = `bench:${ctx.transport}:${process.pid}:${Date.now()}`;
  return withClients(1, ctx, async ([client]) => {
    const receiver = new Receiver();
    client!.subscribe('redis', topic, receiver.onData, onError);
    await ctx.control.until((s) => topicCount(s.redisSubscribers, topic) === 1, 'the Redis subscription');
    const request = { source: 'redis' as const, topics: [topic] };
    await deliver(ctx, receiver, warmup, { ...request, count: warmup, burst: 1, intervalMs });
    receiver.recording = true;
    await deliver(ctx, receiver, latencyCount, { ...request, count: latencyCount, burst: 1, intervalMs });
    const p50Ms = receiver.percentile(50);
    const p99Ms = receiver.percentile(99);
    receiver.recording = false;
    return { p50Ms, p99Ms, ...rates(await deliver(ctx, receiver, count, { ...request, count, burst, intervalMs: 0 }), count) };
  });
}

/**
 * One subscription through the long-poll handler on the scenario's event
 * log: events stored per second, delivered per second, and the round trips
 * to the log's store per event (publishing and reading together).
 */
async function throughLog(ctx: ScenarioContext): Promise<Figures> {
  const { warmup, count, burst } = ctx.params.logs;
  const topic = `bench:log:${process.pid}:${Date.now()}`;
  return withClients(1, ctx, async ([client]) => {
    const receiver = new Receiver();
    client!.subscribe('log', topic, receiver.onData, onError);
    await ctx.control.until((s) => topicCount(s.logSubscribers, topic) === 1, 'the log subscription');
    const request = { source: 'log' as const, topics: [topic], burst, intervalMs: 0 };
    await deliver(ctx, receiver, warmup, { ...request, count: warmup });
    const delivery = await deliver(ctx, receiver, count, { ...request, count });
    return { ...rates(delivery, count), publishedPerSec: (count / delivery.publishMs) * 1000, queriesPerEvent: delivery.logQueries / count };
  });
}

export async function runScenario(name: ScenarioName, ctx: ScenarioContext): Promise<Figures> {
  switch (name) {
    case 'latency':
      return latency(ctx);
    case 'throughput':
      return throughput(ctx);
    case 'throughputTracked':
      return throughput(ctx, 'tracked');
    case 'fanout':
      return fanout(ctx);
    case 'many':
      return many(ctx);
    case 'idle':
      return idle(ctx);
    case 'redis':
      return redis(ctx);
    case 'logMemory':
    case 'logRedis':
    case 'logPostgres':
    case 'logUpstash':
      return throughLog(ctx);
  }
}
