/**
 * `node --import tsx src/cost.ts off|on [polls]`: what telemetry costs per poll, in
 * process (no HTTP, whose cost would drown it). Each poll carries one event and
 * acknowledges the one before, through `createLongPollCore`; with `on` the handler
 * reports to the OpenTelemetry SDK as a service would (metrics collected every second,
 * spans through a batch processor), with exporters that drop what they get.
 */
import { EventEmitter, on } from 'node:events';
import type { Tracer } from '@opentelemetry/api';
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { initTRPC } from '@trpc/server';
import { createLongPollCore, type LongPollTelemetry } from '@trpc-longpoll/server';

const SUCCESS = { code: 0 } as const;

function sdkTelemetry(): LongPollTelemetry & { tracer: Tracer } {
  const metricSink: PushMetricExporter = {
    export: (_metrics, done) => done(SUCCESS),
    selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
    forceFlush: async () => {},
    shutdown: async () => {},
  };
  const spanSink: SpanExporter = { export: (_spans, done) => done(SUCCESS), shutdown: async () => {} };
  const reader = new PeriodicExportingMetricReader({ exporter: metricSink, exportIntervalMillis: 1_000 });
  return {
    meter: new MeterProvider({ readers: [reader] }).getMeter('cost'),
    tracer: new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spanSink)] }).getTracer('cost'),
  };
}

const mode = process.argv[2] === 'on' ? 'on' : 'off';
const polls = Number(process.argv[3] ?? 40_000);
const t = initTRPC.create();
const ticks = new EventEmitter();
const router = t.router({
  ticks: t.procedure.subscription(async function* ({ signal }) {
    for await (const [n] of on(ticks, 'tick', { signal })) yield n as number;
  }),
});
const core = createLongPollCore({ router, ...(mode === 'on' ? { telemetry: sdkTelemetry() } : {}) });

let number = 0;
async function poll(cursor?: { run: string; seq: number }) {
  const answer = await core.serve({
    method: 'POST',
    url: '/',
    header: (name) => (name === 'content-type' ? 'application/json' : undefined),
    body: { text: JSON.stringify({ v: 1, client: 'c', poll: ++number, hold: 0, subscriptions: [{ key: 'a', path: 'ticks', ...(cursor ? { cursor } : {}) }] }) },
    signal: new AbortController().signal,
    req: null,
    createContext: () => ({}),
  });
  return (JSON.parse(answer.body) as { results: { a?: { run?: string; events?: { seq: number }[] } } }).results.a;
}

const cursor = { run: (await poll())!.run!, seq: 0 };
async function step(): Promise<void> {
  ticks.emit('tick', cursor.seq);
  const events = (await poll(cursor))?.events ?? [];
  if (events.length > 0) cursor.seq = events[events.length - 1]!.seq;
}
// Warm-up, so the JIT has settled before the clock starts.
for (let i = 0; i < 2_000; i++) await step();
const started = performance.now();
for (let i = 0; i < polls; i++) await step();
const usPerPoll = ((performance.now() - started) * 1_000) / polls;
console.log(JSON.stringify({ telemetry: mode, polls, usPerPoll: Number(usPerPoll.toFixed(2)) }));
await core.close();
process.exit(0);
