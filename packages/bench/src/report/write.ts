import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ScenarioName, ScenarioParams } from '../loadgen/scenarios';
import { TRANSPORT_LABELS, TRANSPORTS, type Transport } from '../shared';
import { evaluateTargets, medians, type MedianFigures, type RunFigures, type TargetOutcome } from './stats';
import { renderChart } from './svg';

export type { RunFigures } from './stats';

export interface BenchReport {
  generatedAt: string;
  mode: 'quick' | 'full';
  runs: number;
  idleRuns: number;
  durationSec: number;
  machine: { cpus: number; cpuModel: string; memoryGB: number; node: string; platform: string };
  params: ScenarioParams;
  redis: { status: 'measured' } | { status: 'skipped'; note: string };
  /** Bound on the disagreement of the two processes' clocks, which every latency figure may carry. */
  clockSkewUs: number;
  /** Every run's figure. */
  figures: RunFigures;
  errors: string[];
}

const SCENARIO_TITLES: Record<ScenarioName, string> = {
  latency: '1. Latency, publish → onData, low rate',
  throughput: '2. Throughput, one client, one subscription, bursts',
  throughputTracked: '2b. Throughput with tracked() events',
  fanout: '3. Fan-out, 100 clients, one subscription each',
  many: '4. Many subscriptions: one client, 50 subscriptions',
  idle: '5. Idle cost of held requests',
  redis: '6. Through the Redis event log',
  logMemory: '7a. Event log: memory (long-poll handler, one subscription, publishing 20 at a time)',
  logRedis: '7b. Event log: Redis Streams (same)',
  logPostgres: '7c. Event log: PostgreSQL (same)',
  logUpstash: '7d. Event log: Upstash REST (same; queries are HTTP requests, to a loopback REST fixture on the local Redis that runs in the server process and adds to its CPU)',
};

const METRICS: Record<string, { label: string; higherIsBetter: boolean | null }> = {
  p50Ms: { label: 'p50 latency (ms)', higherIsBetter: false },
  p99Ms: { label: 'p99 latency (ms)', higherIsBetter: false },
  eventsPerSec: { label: 'events/s', higherIsBetter: true },
  publishedPerSec: { label: 'events/s stored by publish()', higherIsBetter: true },
  queriesPerEvent: { label: 'round trips to the store per event', higherIsBetter: false },
  serverCpuUsPerEvent: { label: 'server CPU per event (µs)', higherIsBetter: false },
  clientCpuUsPerEvent: { label: 'load-generator CPU per event (µs)', higherIsBetter: false },
  eventsPerResponse: { label: 'events per poll answered', higherIsBetter: true },
  heldRequests: { label: 'requests (WebSocket: sockets) held open', higherIsBetter: false },
  connections: { label: 'TCP connections open', higherIsBetter: false },
  rssPerConnKB: { label: 'server RSS per held request (KB)', higherIsBetter: false },
  heapPerConnKB: { label: 'server heap per held request (KB)', higherIsBetter: false },
  cpuUsPerCycle: { label: 'server CPU per hold cycle (µs)', higherIsBetter: false },
  cpuUsPerConnSec: { label: 'server CPU per connection per idle second (µs)', higherIsBetter: false },
};

function format(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 100) return value.toFixed(0);
  return value.toPrecision(3);
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '–';
  return `${(a / b).toFixed(2)}×`;
}

function scenarioTable(figures: MedianFigures, scenario: ScenarioName): string {
  const byTransport = figures[scenario];
  if (!byTransport) return '';
  const present = TRANSPORTS.filter((t) => byTransport[t]);
  const metrics = Object.keys(METRICS).filter((metric) => present.some((t) => byTransport[t]?.[metric] !== undefined));
  const lp = byTransport.longpoll;
  const header = ['', ...present.map((t) => TRANSPORT_LABELS[t]), 'LP ÷ SSE', 'LP ÷ WS', 'LP ÷ floor'];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const metric of metrics) {
    const cells = [METRICS[metric]!.label, ...present.map((t) => format(byTransport[t]?.[metric]))];
    for (const other of ['sse', 'ws', 'floor'] as Transport[]) cells.push(ratio(lp?.[metric], byTransport[other]?.[metric]));
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return `#### ${SCENARIO_TITLES[scenario]}\n\n${lines.join('\n')}\n`;
}

function targetsTable(outcomes: TargetOutcome[]): string {
  const lines = ['| Target | Measured | Met |', '|---|---:|:---:|'];
  for (const outcome of outcomes) {
    const measured = outcome.against === 'value' ? format(outcome.actual) : `${Number.isFinite(outcome.actual) ? outcome.actual.toFixed(2) : '–'}×`;
    lines.push(`| ${outcome.text} | ${measured} | ${outcome.met === null ? 'not measured' : outcome.met ? 'yes' : '**no**'} |`);
  }
  return lines.join('\n');
}

export function renderGenerated(report: BenchReport, figures: MedianFigures, chartPath: string): string {
  const m = report.machine;
  const scenarios = Object.keys(SCENARIO_TITLES) as ScenarioName[];
  return [
    `Generated ${report.generatedAt} by \`pnpm bench\` (${report.mode} mode) in ${report.durationSec} s.`,
    `Machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryGB} GB, ${m.platform}, Node ${m.node}; shared with other work, so expect noise.`,
    `Every figure is the median of ${report.runs} runs (idle scenario: ${report.idleRuns}). LP = longPollLink.`,
    `Latencies compare clocks of two processes, which agreed within ${report.clockSkewUs} µs (measured over IPC in every run).`,
    ...(report.redis.status === 'skipped' ? [`\nScenario 6 was **skipped**: ${report.redis.note}.`] : []),
    ...(report.errors.length ? [`\nErrors during the run:\n\n${report.errors.map((e) => `- ${e}`).join('\n')}`] : []),
    '',
    '### Targets',
    '',
    targetsTable(evaluateTargets(figures)),
    '',
    `![Benchmark chart](${chartPath})`,
    '',
    '### Figures',
    '',
    ...scenarios.map((scenario) => scenarioTable(figures, scenario)).filter(Boolean),
  ].join('\n');
}

const START = '<!-- bench:generated:start -->';
const END = '<!-- bench:generated:end -->';

/** Writes the JSON with every figure, the chart, and the generated part of the Markdown report. */
export async function writeReport(report: BenchReport, opts: { toDocs: boolean; resultsDir: string }): Promise<string[]> {
  const figures = medians(report.figures);
  const json = JSON.stringify({ ...report, medians: figures, targets: evaluateTargets(figures) }, null, 2) + '\n';
  const chart = renderChart(figures);
  if (!opts.toDocs) {
    await mkdir(opts.resultsDir, { recursive: true });
    const base = `${opts.resultsDir}${report.mode}`;
    await writeFile(`${base}.json`, json);
    await writeFile(`${base}.svg`, chart);
    await writeFile(`${base}.md`, renderGenerated(report, figures, `${report.mode}.svg`) + '\n');
    return [`${base}.json`, `${base}.svg`, `${base}.md`];
  }
  const docs = fileURLToPath(new URL('../../../../docs/', import.meta.url));
  await mkdir(`${docs}assets`, { recursive: true });
  await writeFile(`${docs}benchmarks.json`, json);
  await writeFile(`${docs}assets/bench.svg`, chart);
  const generated = `${START}\n${renderGenerated(report, figures, 'assets/bench.svg')}\n${END}`;
  let markdown: string;
  try {
    markdown = await readFile(`${docs}benchmarks.md`, 'utf8');
  } catch {
    markdown = `# Benchmarks\n\n${START}\n${END}\n`;
  }
  const from = markdown.indexOf(START);
  const to = markdown.indexOf(END);
  markdown = from >= 0 && to > from ? markdown.slice(0, from) + generated + markdown.slice(to + END.length) : `${markdown.trimEnd()}\n\n${generated}\n`;
  await writeFile(`${docs}benchmarks.md`, markdown);
  return [`${docs}benchmarks.md`, `${docs}benchmarks.json`, `${docs}assets/bench.svg`];
}
