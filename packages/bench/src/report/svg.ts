import type { ScenarioName } from '../loadgen/scenarios';
import { TRANSPORT_LABELS, TRANSPORTS, type Transport } from '../shared';
import type { MedianFigures } from './stats';

interface Panel {
  title: string;
  scenario: ScenarioName;
  metric: string;
  unit: string;
}

const PANELS: Panel[] = [
  { title: '1. Latency p50, publish → onData (lower is better)', scenario: 'latency', metric: 'p50Ms', unit: 'ms' },
  { title: '2. Throughput, one subscription (higher is better)', scenario: 'throughput', metric: 'eventsPerSec', unit: 'events/s' },
  { title: '3. Fan-out, 100 clients, delivered (higher is better)', scenario: 'fanout', metric: 'eventsPerSec', unit: 'events/s' },
  { title: '3. Fan-out p99 latency (lower is better)', scenario: 'fanout', metric: 'p99Ms', unit: 'ms' },
  { title: '4. 50 subscriptions, one client (higher is better)', scenario: 'many', metric: 'eventsPerSec', unit: 'events/s' },
  { title: '4. Requests held open for 50 subscriptions', scenario: 'many', metric: 'heldRequests', unit: '' },
  { title: '5. Server RSS per held request (lower is better)', scenario: 'idle', metric: 'rssPerConnKB', unit: 'KB' },
  { title: '6. Through Redis: events/s (higher is better)', scenario: 'redis', metric: 'eventsPerSec', unit: 'events/s' },
];

const COLORS: Record<Transport, string> = { longpoll: '#2563eb', sse: '#f59e0b', ws: '#10b981', floor: '#9ca3af' };

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function format(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value >= 1000) return Math.round(value).toLocaleString('en-US');
  return value >= 10 ? value.toFixed(1) : value.toPrecision(3);
}

/** A hand-drawn bar chart: one panel per headline figure, one bar per transport, each panel to its own scale. */
export function renderChart(figures: MedianFigures): string {
  const width = 760;
  const labelWidth = 190;
  const barArea = width - labelWidth - 130;
  const barHeight = 16;
  const gap = 4;
  const panels = PANELS.filter((panel) => figures[panel.scenario] !== undefined);
  let y = 10;
  const parts: string[] = [];
  for (const panel of panels) {
    const rows = TRANSPORTS.map((transport) => ({ transport, value: figures[panel.scenario]?.[transport]?.[panel.metric] }))
      .filter((row): row is { transport: Transport; value: number } => row.value !== undefined);
    const max = Math.max(...rows.map((row) => (Number.isFinite(row.value) ? row.value : 0)), Number.MIN_VALUE);
    parts.push(`<text x="0" y="${y + 12}" font-weight="bold">${escape(panel.title)}</text>`);
    y += 20;
    for (const row of rows) {
      const length = Number.isFinite(row.value) ? Math.max(1, (row.value / max) * barArea) : 0;
      parts.push(
        `<text x="${labelWidth - 6}" y="${y + 12}" text-anchor="end">${escape(TRANSPORT_LABELS[row.transport])}</text>`,
        `<rect x="${labelWidth}" y="${y}" width="${length.toFixed(1)}" height="${barHeight}" fill="${COLORS[row.transport]}"/>`,
        `<text x="${(labelWidth + length + 6).toFixed(1)}" y="${y + 12}">${escape(`${format(row.value)} ${panel.unit}`.trim())}</text>`,
      );
      y += barHeight + gap;
    }
    y += 14;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
