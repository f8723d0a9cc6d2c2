/**
 * `pnpm bench [--quick] [--runs N] [--only a,b] [--transports a,b] [--idle-polls N] [--set group.key=value] [--longpoll-options JSON] [--profile] [--heap-snapshots] [--no-write]`
 *
 * The orchestrator: it bundles the server and load-generator programs (see
 * `build.ts`), then for every run and scenario starts a server process and a
 * separate load-generator process, collects the figures, and writes the
 * report with the median of the runs.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { buildProcesses } from './build';
import type { LoadgenResult, LoadgenTask } from './loadgen/main';
import { LOG_SCENARIOS, SCENARIOS, type Figures, type ScenarioName } from './loadgen/scenarios';
import { FULL, QUICK } from './params';
import { writeReport, type BenchReport, type RunFigures } from './report/write';
import { now, TRANSPORTS, type ServerArgs, type ServerReady, type Transport } from './shared';

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const option = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};

const quick = flag('quick');
// `--set throughput.count=200000` (repeatable) overrides one parameter, e.g. to profile a longer run.
const params = structuredClone(quick ? QUICK : FULL);
argv.forEach((arg, i) => {
  if (arg !== '--set') return;
  const [path, value] = argv[i + 1]!.split('=');
  const [group, key] = path!.split('.') as [keyof typeof params, string];
  (params[group] as Record<string, number>)[key] = Number(value);
});
const idlePolls = option('idle-polls');
const longPollOptions = option('longpoll-options');
if (idlePolls) params.idle.polls = Number(idlePolls);
const runs = Number(option('runs') ?? (quick ? 1 : 5));
// Ten thousand held connections take a while to set up: fewer runs of the idle scenario.
const idleRuns = Math.min(runs, Number(option('idle-runs') ?? 3));
const scenarios = (option('only')?.split(',') ?? [...SCENARIOS]) as ScenarioName[];
const transports = (option('transports')?.split(',') ?? [...TRANSPORTS]) as Transport[];
const profile = flag('profile');
const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));
const scenarioTimeoutMs = quick ? 60_000 : 600_000;

const childEnv: NodeJS.ProcessEnv = { ...process.env };
if (flag('heap-snapshots')) {
  mkdirSync(`${resultsDir}heap`, { recursive: true });
  childEnv.BENCH_HEAP_SNAPSHOTS = `${resultsDir}heap`;
}

// `--telemetry`: the long-poll server reports to the OpenTelemetry SDK (src/server/telemetry.ts), to state what that costs.
if (flag('telemetry')) childEnv.BENCH_TELEMETRY = '1';
// `--superjson`: tRPC's transports (ours, SSE, WebSocket) run with superjson and events carry a Date.
if (flag('superjson')) childEnv.BENCH_SUPERJSON = '1';

// The bundles must sit inside the package, so that Node finds the bench's dependencies from them.
const bundles = await buildProcesses(`${resultsDir}build`);

function start(file: string, args: string[], extraExecArgv: string[] = []): ChildProcess {
  return fork(file, args, {
    execArgv: extraExecArgv,
    env: childEnv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function nextMessage<T>(child: ChildProcess, what: string, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`${what}: exited with ${code}`));
    };
    child.once('exit', onExit);
    child.once('message', (message) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(message as T);
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.send('stop');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

let redisNote: string | null = null;
/** Log scenarios whose log could not be opened, with why. */
const logNotes = new Map<ScenarioName, string>();
/** Largest disagreement seen between the server's and the load generator's clocks, in µs. */
let clockSkewUs = 0;

/** The child's clock minus ours, from the IPC round trip with the least delay; accurate to half that round trip. */
async function clockOffset(child: ChildProcess): Promise<{ offset: number; rtt: number }> {
  let best = { offset: 0, rtt: Infinity };
  for (let i = 0; i < 20; i++) {
    const sent = now();
    const reply = new Promise<{ now: number }>((resolve) => child.once('message', resolve as never));
    child.send('clock');
    const { now: theirs } = await reply;
    const received = now();
    if (received - sent < best.rtt) best = { offset: theirs - (sent + received) / 2, rtt: received - sent };
  }
  return best;
}

/**
 * Latency compares a timestamp taken in the server process with one taken in
 * the load generator. Both clocks are `performance.timeOrigin + now()`: the
 * wall clock read once at start, then a monotonic counter. This measures how
 * far apart they are, so the report can state the error bound.
 */
async function clockSkew(server: ChildProcess, loadgen: ChildProcess): Promise<number> {
  const [a, b] = [await clockOffset(server), await clockOffset(loadgen)];
  return (Math.abs(a.offset - b.offset) + a.rtt / 2 + b.rtt / 2) * 1000;
}

/** One scenario against the given transports, all served by one fresh server process. */
async function measure(scenario: ScenarioName, order: Transport[], run: number): Promise<LoadgenResult> {
  const serverArgs: ServerArgs = {
    transports: order,
    holdMs: scenario === 'idle' ? params.idle.holdMs : 20_000,
    ...(longPollOptions ? { longPoll: JSON.parse(longPollOptions) as Record<string, number> } : {}),
    ...(LOG_SCENARIOS[scenario] ? { log: LOG_SCENARIOS[scenario] } : {}),
  };
  const profArgs = profile ? ['--cpu-prof', `--cpu-prof-dir=${resultsDir}profiles`, `--cpu-prof-name=${scenario}-${order.join('+')}-${run}.server.cpuprofile`] : [];
  const server = start(bundles.server, [JSON.stringify(serverArgs)], ['--expose-gc', ...profArgs]);
  try {
    const ready = await nextMessage<ServerReady>(server, 'server', 30_000);
    if (scenario === 'redis' && ready.redis !== 'ok') {
      redisNote = ready.redisNote ?? ready.redis;
      return { type: 'result', figures: {}, errors: {} };
    }
    if (LOG_SCENARIOS[scenario] && ready.log !== 'ok') {
      logNotes.set(scenario, ready.logNote ?? String(ready.log));
      return { type: 'result', figures: {}, errors: {} };
    }
    const loadgen = start(bundles.loadgen, [], profile ? ['--cpu-prof', `--cpu-prof-dir=${resultsDir}profiles`, `--cpu-prof-name=${scenario}-${order.join('+')}-${run}.loadgen.cpuprofile`] : []);
    try {
      if (scenario === 'latency' || scenario === 'fanout' || scenario === 'redis') clockSkewUs = Math.max(clockSkewUs, await clockSkew(server, loadgen));
      const task: LoadgenTask = { scenario, transports: order, ports: ready.ports, control: ready.control, params };
      loadgen.send(task);
      return await nextMessage<LoadgenResult>(loadgen, `load generator (${scenario})`, scenarioTimeoutMs);
    } finally {
      // It exits by itself once the result is sent (and writes its profile then).
      await stop(loadgen);
    }
  } finally {
    await stop(server);
  }
}

const figures: RunFigures = {};
const errors: string[] = [];
const started = Date.now();
if (profile) mkdirSync(`${resultsDir}profiles`, { recursive: true });

for (let run = 0; run < runs; run++) {
  for (const scenario of scenarios) {
    if (scenario === 'idle' && run >= idleRuns) continue;
    if (scenario === 'redis' && redisNote) continue;
    if (logNotes.has(scenario)) continue;
    // Rotating the order spreads whatever the first or last transport suffers (JIT warm-up, a noisy neighbour).
    const order = transports.map((_, i) => transports[(i + run) % transports.length]!);
    // The idle scenario measures process memory, so each transport gets a server process to itself.
    // The log scenarios compare logs through the long-poll handler only.
    const groups = scenario === 'idle' ? order.map((t) => [t]) : LOG_SCENARIOS[scenario] ? (transports.includes('longpoll') ? [['longpoll' as const]] : []) : [order];
    for (const group of groups) {
      const label = `run ${run + 1}/${runs} ${scenario} [${group.join(', ')}]`;
      const t0 = Date.now();
      let result: LoadgenResult;
      try {
        result = await measure(scenario, group, run);
      } catch (cause) {
        errors.push(`${label}: ${(cause as Error).message}`);
        console.error(`✗ ${label}: ${(cause as Error).message}`);
        continue;
      }
      for (const [transport, error] of Object.entries(result.errors)) {
        errors.push(`${label} ${transport}: ${error}`);
        console.error(`✗ ${label} ${transport}: ${error}`);
      }
      for (const [transport, values] of Object.entries(result.figures) as [Transport, Figures][]) {
        for (const [metric, value] of Object.entries(values)) {
          ((((figures[scenario] ??= {})[transport] ??= {})[metric] ??= []) as number[]).push(value);
        }
      }
      const summary = Object.entries(result.figures)
        .map(([t, f]) => `${t} ${Object.entries(f).map(([k, v]) => `${k}=${round(v)}`).join(' ')}`)
        .join(' | ');
      console.log(`✓ ${label} ${((Date.now() - t0) / 1000).toFixed(1)}s ${summary || '(skipped)'}`);
    }
  }
}
if (redisNote) console.log(`! scenario 6 (Redis) skipped: ${redisNote}`);
for (const [scenario, note] of logNotes) console.log(`! scenario ${scenario} skipped: ${note}`);
console.log(`Server and load-generator clocks agreed within ${Math.round(clockSkewUs)} µs.`);

function round(value: number | null): string {
  // NaN crosses IPC as null.
  if (value === null || !Number.isFinite(value)) return '–';
  return Math.abs(value) >= 100 ? value.toFixed(0) : value.toPrecision(3);
}

const report: BenchReport = {
  generatedAt: new Date().toISOString(),
  mode: quick ? 'quick' : 'full',
  runs,
  idleRuns,
  durationSec: Math.round((Date.now() - started) / 1000),
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGB: Math.round(totalmem() / 2 ** 30), node: process.version, platform: process.platform },
  params,
  redis: redisNote ? { status: 'skipped', note: redisNote } : { status: 'measured' },
  clockSkewUs: Math.round(clockSkewUs),
  figures,
  errors,
};
const partial = quick || flag('telemetry') || flag('superjson') || flag('no-write') || flag('profile') || option('only') !== undefined || option('transports') !== undefined || argv.includes('--set') || idlePolls !== undefined || longPollOptions !== undefined;
const written = await writeReport(report, { toDocs: !partial, resultsDir });
console.log(`Report: ${written.join(', ')}`);
// Speed is never a failure; a scenario that could not run is.
process.exit(errors.length > 0 ? 1 : 0);
