/*
 * OpenTelemetry for a long-poll handler (the `telemetry` option). The app hands
 * in its own `Meter` and `Tracer`; nothing here loads `@opentelemetry/api`, and
 * a handler without the option gets `NO_OBSERVER`, which does nothing. Not even
 * its types are named: the option's types are the few methods the handler calls,
 * which the API's `Meter` and `Tracer` have (test/telemetry.test.ts checks it),
 * so the published declarations compile for an app without the package.
 *
 * Counters and gauges are observed from `stats()` when the app's reader
 * collects, so they cost nothing per poll. Only the histograms and the spans
 * are recorded as polls are answered and runs start.
 *
 * Names follow OpenTelemetry's naming conventions (semantic-conventions,
 * docs/general/naming.md): a system-specific `trpc_longpoll.` namespace,
 * pluralized counters with `{…}` units, singular UpDownCounters, `usage` /
 * `limit` pairs, no `_total`, `error.type` for failures. docs/observability.md
 * lists them all; renaming one is a breaking change.
 */
import type { LongPollStats, PollOutcome, RefusalReason } from './stats';

type Attributes = Record<string, string | number | boolean | undefined>;
interface InstrumentOptions {
  unit?: string;
  description?: string;
  advice?: { explicitBucketBoundaries?: number[] };
}
/** An observable instrument, as `addBatchObservableCallback` takes it back. */
type Observable = object;
interface BatchObservableResult {
  observe(observable: Observable, value: number, attributes?: Attributes): void;
}

/** The part of OpenTelemetry's `Meter` (`@opentelemetry/api`) the handler uses. */
export interface TelemetryMeter {
  createHistogram(name: string, options?: InstrumentOptions): { record(value: number, attributes?: Attributes): void };
  createObservableCounter(name: string, options?: InstrumentOptions): Observable;
  createObservableUpDownCounter(name: string, options?: InstrumentOptions): Observable;
  addBatchObservableCallback(callback: (result: BatchObservableResult) => void, observables: Observable[]): void;
}

/** The part of OpenTelemetry's `Span` the handler uses. */
interface TelemetrySpan {
  setAttribute(key: string, value: string): unknown;
  setStatus(status: { code: number }): unknown;
  /** Epoch ms. */
  end(endTime?: number): void;
}

/** The part of OpenTelemetry's `Tracer` (`@opentelemetry/api`) the handler uses. */
export interface TelemetryTracer {
  /** `startTime` in epoch ms; the span's parent is the active context. */
  startSpan(name: string, options?: { startTime?: number; attributes?: Attributes }): TelemetrySpan;
}

/** The `telemetry` option: where the handler reports. Either may be left out. */
export interface LongPollTelemetry {
  /** An OpenTelemetry `Meter`: gets the counters and gauges of `stats()` and the poll histograms. */
  meter?: TelemetryMeter;
  /** An OpenTelemetry `Tracer`: gets a span per answered or refused poll and per procedure run started. */
  tracer?: TelemetryTracer;
}

/** How a run came to start, as `stats().counters.runs` counts it. */
export type RunStartKind = 'started' | 'resumed';

/** What a run start reports: the promise that it has begun, and whether it failed doing so. */
interface StartingRun {
  start(): Promise<void>;
  readonly failedAtStart: boolean;
}

/** What the pipeline tells telemetry, at the places where it counts. */
export interface PollObserver {
  /** A timestamp (ms) to hand back to `pollAnswered`; 0 when nothing is measured. */
  now(): number;
  pollAnswered(outcome: PollOutcome, startedAt: number, events: number, subscriptions: number): void;
  pollRefused(reason: RefusalReason, status: number): void;
  /** Starts the run; the returned promise settles when `run.start()` does. */
  runStart(path: string, kind: RunStartKind, run: StartingRun): Promise<void>;
}

export const NO_OBSERVER: PollObserver = {
  now: () => 0,
  pollAnswered() {},
  pollRefused() {},
  runStart: (_path, _kind, run) => run.start(),
};

/** Attribute keys; their values are the names `stats()` uses. */
export const ATTR = {
  outcome: 'trpc_longpoll.poll.outcome',
  subscriptions: 'trpc_longpoll.poll.subscriptions',
  events: 'trpc_longpoll.poll.events',
  refusalReason: 'trpc_longpoll.refusal.reason',
  status: 'http.response.status_code',
  path: 'trpc_longpoll.procedure.path',
  startKind: 'trpc_longpoll.run.start_kind',
  moveKind: 'trpc_longpoll.move.kind',
  errorType: 'error.type',
} as const;

/** `SpanStatusCode.ERROR`. */
const ERROR = 2;

/** Seconds: from a poll's first microseconds to a full default hold (20 s) and past it. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 25, 30];
/** Events per answer, up to the default `maxBatchEvents` (1 000). */
const EVENT_BUCKETS = [0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000];

export function createObserver(telemetry: LongPollTelemetry | undefined, stats: () => LongPollStats): PollObserver {
  if (!telemetry?.meter && !telemetry?.tracer) return NO_OBSERVER;
  const { meter, tracer } = telemetry;
  // Never removed: a closed handler's last figures (its drain answers) stay readable for the last scrape.
  if (meter) observeStats(meter, stats);
  const histograms = meter ? pollHistograms(meter) : null;
  const timeOrigin = performance.timeOrigin;
  return {
    now: () => performance.now(),
    pollAnswered(outcome, startedAt, events, subscriptions) {
      const end = performance.now();
      const attributes = { [ATTR.outcome]: outcome };
      histograms?.duration.record((end - startedAt) / 1000, attributes);
      histograms?.events.record(events, attributes);
      tracer
        ?.startSpan('trpc_longpoll.poll', {
          startTime: timeOrigin + startedAt,
          attributes: { ...attributes, [ATTR.subscriptions]: subscriptions, [ATTR.events]: events },
        })
        .end(timeOrigin + end);
    },
    pollRefused(reason, status) {
      const span = tracer?.startSpan('trpc_longpoll.poll', { attributes: { [ATTR.errorType]: reason, [ATTR.status]: status } });
      span?.setStatus({ code: ERROR });
      span?.end();
    },
    async runStart(path, kind, run) {
      if (!tracer) return run.start();
      const span = tracer.startSpan('trpc_longpoll.run.start', { attributes: { [ATTR.path]: path, [ATTR.startKind]: kind } });
      try {
        await run.start();
      } finally {
        if (run.failedAtStart) {
          // The procedure threw before its iterator existed; its error goes to the client and onError, not here.
          span.setAttribute(ATTR.errorType, '_OTHER');
          span.setStatus({ code: ERROR });
        }
        span.end();
      }
    },
  };
}

type Histogram = ReturnType<TelemetryMeter['createHistogram']>;

function pollHistograms(meter: TelemetryMeter): { duration: Histogram; events: Histogram } {
  return {
    duration: meter.createHistogram('trpc_longpoll.poll.duration', {
      unit: 's',
      description: 'How long answered polls took, from their context being made to their answer',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    }),
    events: meter.createHistogram('trpc_longpoll.poll.events', {
      unit: '{event}',
      description: 'Events in each answer',
      advice: { explicitBucketBoundaries: EVENT_BUCKETS },
    }),
  };
}

/** Every counter and gauge, read from one `stats()` call per collection. */
function observeStats(meter: TelemetryMeter, stats: () => LongPollStats): void {
  const counter = (name: string, unit: string, description: string) => meter.createObservableCounter(name, { unit, description });
  const gauge = (name: string, unit: string, description: string) => meter.createObservableUpDownCounter(name, { unit, description });
  const m = {
    answers: counter('trpc_longpoll.poll.answers', '{poll}', 'Polls answered, by why the answer went out'),
    refusals: counter('trpc_longpoll.poll.refusals', '{refusal}', 'Polls, or subscriptions of a poll, refused, by reason'),
    runStarts: counter('trpc_longpoll.run.starts', '{run}', 'Procedure runs started, resumed from a cursor, or adopted'),
    cursorErrors: counter('trpc_longpoll.subscription.cursor_errors', '{error}', 'Subscription ends carrying a cursor error'),
    deliveries: counter('trpc_longpoll.event.deliveries', '{event}', 'Events put into answers (a resent event counts again)'),
    moves: counter('trpc_longpoll.session.moves', '{move}', 'Clients moving between instances (the cluster option)'),
    held: gauge('trpc_longpoll.poll.held', '{poll}', 'Polls held open now, waiting for news'),
    active: gauge('trpc_longpoll.poll.active', '{poll}', 'Polls between admission and answer now (the maxHeldPolls budget in use)'),
    pollLimit: gauge('trpc_longpoll.poll.limit', '{poll}', 'maxHeldPolls'),
    sessions: gauge('trpc_longpoll.session.count', '{session}', 'Clients the server keeps state for'),
    sessionLimit: gauge('trpc_longpoll.session.limit', '{session}', 'maxSessions'),
    runs: gauge('trpc_longpoll.run.active', '{run}', 'Procedures running now, by procedure path'),
    runLimit: gauge('trpc_longpoll.run.limit', '{run}', 'maxRuns'),
    bufferUsage: gauge('trpc_longpoll.buffer.usage', 'By', 'Bytes of unacknowledged events held for clients (JSON + 64 each)'),
    bufferLimit: gauge('trpc_longpoll.buffer.limit', 'By', 'maxTotalBufferedBytes'),
    bufferEvents: gauge('trpc_longpoll.buffer.event.count', '{event}', 'Unacknowledged events held for clients'),
  };
  const observables: Observable[] = Object.values(m);
  // A path whose last run stopped is reported at 0, not left at its last count.
  const paths = new Set<string>();
  const callback = (result: BatchObservableResult) => {
    const s = stats();
    const c = s.counters;
    const each = (instrument: Observable, values: Record<string, number>, key: string, extra?: Attributes) => {
      for (const [value, count] of Object.entries(values)) result.observe(instrument, count, { [key]: value, ...extra });
    };
    each(m.answers, c.polls, ATTR.outcome);
    for (const [reason, { status, count }] of Object.entries(c.refusals)) {
      result.observe(m.refusals, count, { [ATTR.refusalReason]: reason, [ATTR.status]: status });
    }
    each(m.runStarts, c.runs, ATTR.startKind);
    each(m.cursorErrors, c.cursorErrors, ATTR.errorType);
    result.observe(m.deliveries, c.eventsDelivered);
    each(m.moves, c.moves, ATTR.moveKind);
    result.observe(m.held, s.heldPolls);
    result.observe(m.active, s.pollsInProgress);
    result.observe(m.pollLimit, s.budgets.heldPolls.limit);
    result.observe(m.sessions, s.sessions);
    result.observe(m.sessionLimit, s.budgets.sessions.limit);
    for (const path of Object.keys(s.runs.byPath)) paths.add(path);
    for (const path of paths) result.observe(m.runs, s.runs.byPath[path] ?? 0, { [ATTR.path]: path });
    result.observe(m.runLimit, s.budgets.runs.limit);
    result.observe(m.bufferUsage, s.bufferedBytes);
    result.observe(m.bufferLimit, s.budgets.totalBufferedBytes.limit);
    result.observe(m.bufferEvents, s.bufferedEvents);
  };
  meter.addBatchObservableCallback(callback, observables);
}
