import type { Figures, ScenarioName } from '../loadgen/scenarios';
import type { Transport } from '../shared';

/** Every run's value, by scenario, transport and metric. */
export type RunFigures = Partial<Record<ScenarioName, Partial<Record<Transport, Record<string, number[]>>>>>;
export type MedianFigures = Partial<Record<ScenarioName, Partial<Record<Transport, Figures>>>>;

export function median(values: number[]): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

export function medians(figures: RunFigures): MedianFigures {
  const result: MedianFigures = {};
  for (const [scenario, byTransport] of Object.entries(figures) as [ScenarioName, Partial<Record<Transport, Record<string, number[]>>>][]) {
    const out: Partial<Record<Transport, Figures>> = (result[scenario] = {});
    for (const [transport, metrics] of Object.entries(byTransport) as [Transport, Record<string, number[]>][]) {
      out[transport] = Object.fromEntries(Object.entries(metrics).map(([metric, values]) => [metric, median(values)]));
    }
  }
  return result;
}

export interface Target {
  scenario: ScenarioName;
  metric: string;
  /** Compared with another transport's figure (a ratio), or with a fixed value. */
  against: Transport | 'value';
  op: '>=' | '<=' | '==';
  bound: number;
  text: string;
}

/** The targets of issue 5, each a ratio between transports in one run on one machine, or an absolute bound. */
export const TARGETS: Target[] = [
  { scenario: 'throughput', metric: 'eventsPerSec', against: 'sse', op: '>=', bound: 1, text: 'Throughput ≥ 1.0× SSE' },
  { scenario: 'throughput', metric: 'eventsPerSec', against: 'ws', op: '>=', bound: 0.8, text: 'Throughput ≥ 0.8× WebSocket' },
  { scenario: 'throughput', metric: 'eventsPerSec', against: 'floor', op: '>=', bound: 0.5, text: 'Throughput ≥ 50% of the floor' },
  { scenario: 'fanout', metric: 'eventsPerSec', against: 'sse', op: '>=', bound: 1, text: 'Fan-out events/s ≥ 1.0× SSE' },
  { scenario: 'latency', metric: 'p50Ms', against: 'sse', op: '<=', bound: 1.5, text: 'Latency p50 ≤ 1.5× SSE' },
  { scenario: 'many', metric: 'heldRequests', against: 'value', op: '==', bound: 1, text: '50 subscriptions on 1 held request (SSE holds 50)' },
  { scenario: 'many', metric: 'eventsPerSec', against: 'sse', op: '>=', bound: 1, text: 'Many subscriptions events/s ≥ SSE' },
  { scenario: 'idle', metric: 'rssPerConnKB', against: 'value', op: '<=', bound: 16, text: 'Idle: ≤ 16 KB server memory (RSS) per held poll' },
];

export interface TargetOutcome extends Target {
  /** The ratio to the other transport, or longPollLink's own figure. */
  actual: number;
  met: boolean | null;
}

export function evaluateTargets(figures: MedianFigures): TargetOutcome[] {
  return TARGETS.map((target) => {
    const own = figures[target.scenario]?.longpoll?.[target.metric];
    const other = target.against === 'value' ? 1 : figures[target.scenario]?.[target.against]?.[target.metric];
    const actual = own === undefined || other === undefined ? NaN : target.against === 'value' ? own : own / other;
    const met = Number.isNaN(actual)
      ? null
      : target.op === '>='
        ? actual >= target.bound
        : target.op === '<='
          ? actual <= target.bound
          : actual === target.bound;
    return { ...target, actual, met };
  });
}
