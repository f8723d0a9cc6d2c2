import { describe, expect, it } from 'vitest';
import { FULL } from '../src/params';
import { evaluateTargets, median, medians, type RunFigures } from '../src/report/stats';
import { renderChart } from '../src/report/svg';
import { renderGenerated, type BenchReport } from '../src/report/write';

const figures: RunFigures = {
  throughput: {
    longpoll: { eventsPerSec: [900, 1100, 1000] },
    sse: { eventsPerSec: [500, 400, 450] },
    ws: { eventsPerSec: [1500, 1500, 1500] },
    floor: { eventsPerSec: [1800, 2200, 2000] },
  },
  latency: { longpoll: { p50Ms: [0.4] }, sse: { p50Ms: [0.2] } },
  many: { longpoll: { heldRequests: [1], eventsPerSec: [10] }, sse: { heldRequests: [50], eventsPerSec: [5] } },
};

describe('report', () => {
  it('takes medians, ignoring runs that produced no figure', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([NaN, 5])).toBe(5);
    expect(median([])).toBeNaN();
  });

  it('judges each target from the medians of one run set', () => {
    const outcomes = evaluateTargets(medians(figures));
    const byText = Object.fromEntries(outcomes.map((o) => [o.text, o]));
    expect(byText['Throughput ≥ 1.0× SSE']).toMatchObject({ actual: 1000 / 450, met: true });
    expect(byText['Throughput ≥ 0.8× WebSocket']).toMatchObject({ actual: 1000 / 1500, met: false });
    expect(byText['Throughput ≥ 50% of the floor']).toMatchObject({ actual: 0.5, met: true });
    expect(byText['Latency p50 ≤ 1.5× SSE']).toMatchObject({ met: false });
    expect(byText['50 subscriptions on 1 held request (SSE holds 50)']).toMatchObject({ actual: 1, met: true });
    // Scenarios that did not run are reported as such, not as failures.
    expect(byText['Fan-out events/s ≥ 1.0× SSE']!.met).toBeNull();
  });

  it('draws one bar per transport and figure', () => {
    const svg = renderChart(medians(figures));
    expect(svg.startsWith('<svg')).toBe(true);
    // Throughput (4 transports), latency (2), many: events/s (2) and held requests (2).
    expect(svg.match(/<rect x=/g)).toHaveLength(10);
    expect(svg).toContain('1,000 events/s');
  });

  it('writes a table per scenario with the ratios to the other transports', () => {
    const report: BenchReport = {
      generatedAt: '2026-01-01T00:00:00.000Z',
      mode: 'full',
      runs: 3,
      idleRuns: 3,
      durationSec: 1,
      machine: { cpus: 2, cpuModel: 'test', memoryGB: 1, node: 'v20', platform: 'linux' },
      params: FULL,
      redis: { status: 'skipped', note: 'no Redis' },
      clockSkewUs: 5,
      figures,
      errors: [],
    };
    const markdown = renderGenerated(report, medians(figures), 'chart.svg');
    expect(markdown).toContain('| events/s | 1,000 | 450 | 1,500 | 2,000 | 2.22× | 0.67× | 0.50× |');
    expect(markdown).toContain('Scenario 6 was **skipped**: no Redis');
  });
});
