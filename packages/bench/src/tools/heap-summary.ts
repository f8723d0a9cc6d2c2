/**
 * `node --import tsx src/tools/heap-summary.ts <file.heapsnapshot> [divisor] [group]`
 *
 * Sums a V8 heap snapshot's objects by constructor (self sizes), biggest
 * first; with a divisor (the number of held requests) it also shows bytes and
 * objects per request, which is how the idle scenario's memory was read.
 * With a group name (as printed, e.g. `array`) it shows what holds that group's objects instead.
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

const [file, divisorArg, focus] = process.argv.slice(2);
process.stdout.on('error', () => process.exit(0));
if (!file) throw new Error('usage: heap-summary.ts <file.heapsnapshot> [divisor]');
const divisor = Number(divisorArg ?? 1);
const data = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
const fields = data.snapshot.meta.node_fields;
const types = data.snapshot.meta.node_types[0];
const width = fields.length;
const typeAt = fields.indexOf('type');
const nameAt = fields.indexOf('name');
const sizeAt = fields.indexOf('self_size');

const edgeWidth = data.snapshot.meta.edge_fields.length;
const edgeCountAt = fields.indexOf('edge_count');
const edgeTypeAt = data.snapshot.meta.edge_fields.indexOf('type');
const edgeNameAt = data.snapshot.meta.edge_fields.indexOf('name_or_index');
const edgeToAt = data.snapshot.meta.edge_fields.indexOf('to_node');
const edgeTypes = data.snapshot.meta.edge_types[0];

// Strings and code are grouped by kind: their names are their contents.
function groupOf(i: number): string {
  const type = types[data.nodes[i + typeAt]!]!;
  return type === 'object' || type === 'closure' ? `${type} ${data.strings[data.nodes[i + nameAt]!]}` : type;
}

/** For `focus`: the first strong retainer of every node, as "retainer group .edge". */
const retainer = new Map<number, string>();
if (focus) {
  let edge = 0;
  for (let i = 0; i < data.nodes.length; i += width) {
    const count = data.nodes[i + edgeCountAt]!;
    for (let e = 0; e < count; e++, edge += edgeWidth) {
      const edgeType = edgeTypes[data.edges[edge + edgeTypeAt]!]!;
      if (edgeType === 'weak') continue;
      const to = data.edges[edge + edgeToAt]!;
      if (retainer.has(to)) continue;
      const raw = data.edges[edge + edgeNameAt]!;
      const name = edgeType === 'element' || edgeType === 'hidden' ? `[${edgeType}]` : data.strings[raw];
      retainer.set(to, `${groupOf(i)} .${name}`);
    }
  }
}

const groups = new Map<string, { count: number; bytes: number }>();
let total = 0;
for (let i = 0; i < data.nodes.length; i += width) {
  const size = data.nodes[i + sizeAt]!;
  let name = groupOf(i);
  if (focus) {
    if (name !== focus) continue;
    name = `held by ${retainer.get(i) ?? '?'}`;
  }
  const group = groups.get(name) ?? { count: 0, bytes: 0 };
  group.count++;
  group.bytes += size;
  groups.set(name, group);
  total += size;
}
const rows = [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, Number(process.env.TOP ?? 40));
console.log(`total ${(total / 2 ** 20).toFixed(1)} MiB${divisor > 1 ? `, ${(total / divisor).toFixed(0)} B per ${divisor}th` : ''}`);
for (const [name, { count, bytes }] of rows) {
  const per = divisor > 1 ? `  ${(count / divisor).toFixed(2).padStart(7)} obj  ${(bytes / divisor).toFixed(0).padStart(6)} B` : '';
  console.log(`${(bytes / 1024).toFixed(0).padStart(9)} KiB ${String(count).padStart(8)}${per}  ${name}`);
}
