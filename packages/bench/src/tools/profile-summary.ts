/**
 * `node --import tsx src/tools/profile-summary.ts <file.cpuprofile> [top]`
 *
 * Self time of a `--cpu-prof` profile by function and file, biggest first,
 * and the same summed by package, which is how the hot paths were ranked.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, topArg] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-summary.ts <file.cpuprofile> [top]');
process.stdout.on('error', () => process.exit(0));
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]!;
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);

function where(url: string): string {
  if (!url) return '(native)';
  const pnpm = url.match(/node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/);
  if (pnpm) return `${pnpm[1]}/${pnpm[2]}`;
  if (url.startsWith('node:')) return url;
  return url.replace(/^.*\/packages\//, 'packages/');
}
function packageOf(url: string): string {
  if (!url) return '(native/gc/idle)';
  if (url.startsWith('node:')) return 'node core';
  const pnpm = url.match(/node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  return pnpm ? pnpm[1]! : 'bench bundle (bench + @trpc-longpoll/*)';
}

const functions = new Map<string, number>();
const packages = new Map<string, number>();
for (const [id, time] of self) {
  const frame = byId.get(id)!.callFrame;
  const key = `${frame.functionName || '(anonymous)'}  ${where(frame.url)}:${frame.lineNumber + 1}`;
  functions.set(key, (functions.get(key) ?? 0) + time);
  packages.set(packageOf(frame.url), (packages.get(packageOf(frame.url)) ?? 0) + time);
}
const pct = (time: number) => `${((time / total) * 100).toFixed(1).padStart(5)}%`;
console.log(`${(total / 1000).toFixed(0)} ms sampled`);
for (const [name, time] of [...packages].sort((a, b) => b[1] - a[1])) console.log(`${pct(time)}  ${name}`);
console.log('');
for (const [name, time] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 30))) console.log(`${pct(time)}  ${name}`);
