import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import type { Tracer } from '@opentelemetry/api';
import { MeterProvider, type MetricReader } from '@opentelemetry/sdk-metrics';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { createLongPollNodeHandler, type LongPollOptions, type LongPollStats } from '@trpc-longpoll/server';
import { createAppRouter, type AppRouter } from './router';

export interface ObservedServer {
  /** The tRPC endpoint: polls are POSTed to it, other calls go below it. */
  url: string;
  /** Prometheus scrapes this. */
  metricsUrl: string;
  stats(): LongPollStats;
  /** Drains the long-poll handler (held polls are answered); `/metrics` keeps answering. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

type Budgets = Omit<LongPollOptions<AppRouter>, 'router' | 'telemetry'>;

/**
 * One `node:http` server: tRPC at `/trpc` (polls through the long-poll handler,
 * everything else through tRPC's own), and the handler's OpenTelemetry metrics
 * in Prometheus format at `/metrics`.
 */
export interface ObservedServerOptions {
  port?: number;
  longPoll?: Budgets;
  /** More readers of the same meter, beside Prometheus's (a test's in-memory one). */
  readers?: MetricReader[];
  /** Spans go here; without it, none are made. */
  tracer?: Tracer;
}

export async function startObservedServer(opts: ObservedServerOptions = {}): Promise<ObservedServer> {
  // The exporter is a metric reader: every scrape collects, which reads the handler's stats() once.
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ readers: [exporter, ...(opts.readers ?? [])] });
  const router = createAppRouter();
  const longPoll = createLongPollNodeHandler({
    router,
    endpoint: '/trpc',
    ...opts.longPoll,
    telemetry: { meter: meterProvider.getMeter('@trpc-longpoll/server'), ...(opts.tracer ? { tracer: opts.tracer } : {}) },
  });
  const trpc = createHTTPHandler({ router, basePath: '/trpc/' });
  const server: Server = createServer((req, res) => {
    if (req.url === '/metrics') return exporter.getMetricsRequestHandler(req, res);
    longPoll(req, res, () => trpc(req, res));
  });
  await new Promise<void>((resolve) => server.listen({ port: opts.port ?? 0, host: '127.0.0.1' }, resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${origin}/trpc`,
    metricsUrl: `${origin}/metrics`,
    stats: longPoll.stats,
    drain: longPoll.close,
    async close() {
      await longPoll.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await meterProvider.shutdown();
    },
  };
}
