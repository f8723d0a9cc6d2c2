import { SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { MetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { runScenario, SCENARIO_COUNTERS } from '../src/scenario';
import { startObservedServer, type ObservedServer } from '../src/server';

/** A reader the test collects from when it wants: the SDK's pull model, without an exporter's timer. */
class CollectingReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}

  /** Every data point of `name`, keyed by its attributes (`a=1,b=2`; `''` for none). */
  async points(name: string): Promise<Record<string, unknown>> {
    const { resourceMetrics, errors } = await this.collect();
    expect(errors).toEqual([]);
    const metric = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).find((m) => m.descriptor.name === name);
    if (!metric) return {};
    const points = metric.dataPoints as DataPoint<number | Histogram>[];
    return Object.fromEntries(points.map((point) => [attributesKey(point.attributes), point.value]));
  }
}

const attributesKey = (attributes: Attributes) =>
  Object.entries(attributes)
    .map(([key, value]) => `${key}=${String(value)}`)
    .join(',');

const servers: ObservedServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start() {
  const reader = new CollectingReader();
  const spans = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }).getTracer('test');
  const server = await startObservedServer({ longPoll: { maxSessions: 1, coalesceMs: 50 }, readers: [reader], tracer });
  servers.push(server);
  return { server, reader, spans };
}

describe('OpenTelemetry, read by the SDK', () => {
  it('gets the scripted scenario’s exact counters and histograms from an in-memory reader', async () => {
    const { server, reader } = await start();
    await runScenario(server);
    expect(server.stats().counters).toEqual(SCENARIO_COUNTERS);

    expect(await reader.points('trpc_longpoll.poll.answers')).toEqual({
      'trpc_longpoll.poll.outcome=news': 4,
      'trpc_longpoll.poll.outcome=holdExpired': 1,
      'trpc_longpoll.poll.outcome=released': 0,
      'trpc_longpoll.poll.outcome=drain': 1,
      'trpc_longpoll.poll.outcome=stale': 0,
    });
    expect(await reader.points('trpc_longpoll.poll.refusals')).toEqual({ 'trpc_longpoll.refusal.reason=sessions,http.response.status_code=503': 5 });
    expect(await reader.points('trpc_longpoll.run.starts')).toEqual({
      'trpc_longpoll.run.start_kind=started': 3,
      'trpc_longpoll.run.start_kind=resumed': 0,
      'trpc_longpoll.run.start_kind=adopted': 0,
    });
    expect(await reader.points('trpc_longpoll.subscription.cursor_errors')).toEqual({
      'error.type=resume-lost': 1,
      'error.type=gone': 0,
      'error.type=reset': 0,
      'error.type=no-affinity': 0,
    });
    expect(await reader.points('trpc_longpoll.event.deliveries')).toEqual({ '': 3 });

    const events = await reader.points('trpc_longpoll.poll.events');
    expect(events['trpc_longpoll.poll.outcome=news']).toMatchObject({ count: 4, sum: 3, min: 0, max: 3 });
    expect(events['trpc_longpoll.poll.outcome=holdExpired']).toMatchObject({ count: 1, sum: 0 });
    expect(events['trpc_longpoll.poll.outcome=drain']).toMatchObject({ count: 1, sum: 0 });
    const durations = await reader.points('trpc_longpoll.poll.duration');
    expect(Object.keys(durations).sort()).toEqual(['trpc_longpoll.poll.outcome=drain', 'trpc_longpoll.poll.outcome=holdExpired', 'trpc_longpoll.poll.outcome=news']);
    // In seconds: the news answers waited out the 50 ms coalescing window; none took anywhere near a minute.
    expect(durations['trpc_longpoll.poll.outcome=news']).toMatchObject({ count: 4, min: expect.any(Number) });
    const news = durations['trpc_longpoll.poll.outcome=news'] as Histogram;
    expect(news.min).toBeGreaterThanOrEqual(0.04);
    expect(news.max).toBeLessThan(60);
  });

  it('makes a span per poll (answered or refused) and per run started, with their attributes', async () => {
    const { server, spans } = await start();
    await runScenario(server);
    const story = spans.getFinishedSpans().map((span) => {
      const a = span.attributes;
      if (span.name === 'trpc_longpoll.run.start') return `start ${String(a['trpc_longpoll.procedure.path'])} ${String(a['trpc_longpoll.run.start_kind'])}`;
      if (span.status.code === SpanStatusCode.ERROR) return `refused ${String(a['error.type'])} ${String(a['http.response.status_code'])}`;
      return `${String(a['trpc_longpoll.poll.outcome'])} subs=${String(a['trpc_longpoll.poll.subscriptions'])} events=${String(a['trpc_longpoll.poll.events'])}`;
    });
    expect(story).toEqual([
      'start ticks started',
      'start ticks started',
      'news subs=2 events=0',
      'news subs=2 events=3',
      'holdExpired subs=1 events=0',
      ...Array<string>(5).fill('refused sessions 503'),
      'news subs=1 events=0',
      'start ticks started',
      'news subs=1 events=0',
      'drain subs=1 events=0',
    ]);
    // A poll's span covers its hold: the one that carried the three events waited for them, then 50 ms of coalescing.
    const held = spans.getFinishedSpans().find((span) => span.attributes['trpc_longpoll.poll.events'] === 3)!;
    expect(held.duration[0] * 1e3 + held.duration[1] / 1e6).toBeGreaterThanOrEqual(45);
  });
});
