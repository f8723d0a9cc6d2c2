/**
 * `pnpm bench --telemetry`: the long-poll handler reports to the real OpenTelemetry SDK,
 * set up as a service would (metrics collected every second, spans through a batch
 * processor), with exporters that count and drop what they get, so the figures are the
 * handler's and the SDK's cost, not a network's. Loaded only with the flag.
 */
import type { LongPollTelemetry } from '@trpc-longpoll/server';

export async function benchTelemetry(): Promise<LongPollTelemetry> {
  const { MeterProvider, PeriodicExportingMetricReader, AggregationTemporality } = await import('@opentelemetry/sdk-metrics');
  const { BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const success = { code: 0 } as const;
  const reader = new PeriodicExportingMetricReader({
    exportIntervalMillis: 1_000,
    exporter: {
      export: (_metrics, done) => done(success),
      selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
      forceFlush: async () => {},
      shutdown: async () => {},
    },
  });
  const meter = new MeterProvider({ readers: [reader] }).getMeter('@trpc-longpoll/server');
  const spans = new BatchSpanProcessor({ export: (_spans, done) => done(success), shutdown: async () => {} });
  const tracer = new BasicTracerProvider({ spanProcessors: [spans] }).getTracer('@trpc-longpoll/server');
  return { meter, tracer };
}
