/**
 * `pnpm chaos`: the soak with faults, then the 100 000-cycle leak check.
 * Exits non-zero if any client lost, duplicated or reordered an event, or if
 * anything leaked.
 *
 *   pnpm chaos [--log redis|postgres] [--minutes 3] [--clients 8] [--from-now-clients 2] [--untracked-clients 2]
 *              [--subscriptions 3] [--topics 6] [--events 900]
 *              [--fault-rate 0.15] [--hold 2000] [--leak-cycles 100000] [--json report.json]
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { DATABASE_URL, postgresAvailable } from '../postgresEnv';
import { REDIS_URL, redisAvailable } from '../redisEnv';
import { CHAOS_LOGS, type ChaosLogKind } from './logChoice';
import type { LeakReport } from './leakCycles';
import { formatReport, runSoak } from './soak';

const { values } = parseArgs({
  options: {
    log: { type: 'string', default: 'redis' },
    minutes: { type: 'string', default: '3' },
    clients: { type: 'string', default: '8' },
    'from-now-clients': { type: 'string', default: '2' },
    'untracked-clients': { type: 'string', default: '2' },
    subscriptions: { type: 'string', default: '3' },
    topics: { type: 'string', default: '6' },
    events: { type: 'string' },
    'fault-rate': { type: 'string', default: '0.15' },
    hold: { type: 'string', default: '2000' },
    'leak-cycles': { type: 'string', default: '100000' },
    json: { type: 'string' },
  },
});

const minutes = Number(values.minutes);
const durationMs = minutes * 60_000;
const events = Number(values.events ?? Math.round(durationMs / 200));

const eventLog = values.log as ChaosLogKind;
if (!CHAOS_LOGS.includes(eventLog)) {
  console.error(`--log must be one of ${CHAOS_LOGS.join(', ')}; got ${values.log}`);
  process.exit(2);
}
if (eventLog === 'redis' && !(await redisAvailable('pnpm chaos'))) {
  console.error(`pnpm chaos needs Redis (REDIS_URL, default ${REDIS_URL}).`);
  process.exit(2);
}
if (eventLog === 'postgres' && !(await postgresAvailable('pnpm chaos --log postgres'))) {
  console.error(`pnpm chaos --log postgres needs PostgreSQL (DATABASE_URL, default ${DATABASE_URL}).`);
  process.exit(2);
}

console.log(`chaos soak on the ${eventLog} log: ${minutes} min, ${events} events per topic\n`);
const report = await runSoak({
  redisUrl: REDIS_URL,
  eventLog,
  clients: Number(values.clients),
  fromNowClients: Number(values['from-now-clients']),
  untrackedClients: Number(values['untracked-clients']),
  subscriptionsPerClient: Number(values.subscriptions),
  topics: Number(values.topics),
  events,
  durationMs,
  holdMs: Number(values.hold),
  faultRate: Number(values['fault-rate']),
  killAt: 0.35,
  drainAt: 0.7,
  restartAfterMs: 2_000,
  settleMs: 60_000,
  log: (line) => console.log(line),
});
console.log(`\n${formatReport(report, { timeline: false })}\n`);

const cycles = Number(values['leak-cycles']);
let leak: LeakReport | null = null;
let leakOk = true;
if (cycles > 0) {
  console.log(`leak check: ${cycles} subscribe/abandon cycles`);
  const root = fileURLToPath(new URL('../../../..', import.meta.url));
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', 'packages/e2e/src/chaos/leakCycles.ts', String(cycles)],
    { cwd: root, maxBuffer: 1024 * 1024 },
  );
  leak = JSON.parse(stdout.trim().split('\n').at(-1)!) as LeakReport;
  leakOk = leak.finished === leak.started && leak.timersAfter <= 1 && leak.timersClosed === 0 && leak.rssGrowth < 0.1;
  console.log(
    `  procedures started ${leak.started}, finished ${leak.finished}; timers left ${leak.timersAfter} (after close ${leak.timersClosed}); ` +
      `RSS ${(leak.rssStart / 2 ** 20).toFixed(1)} → ${(leak.rssEnd / 2 ** 20).toFixed(1)} MiB (${(leak.rssGrowth * 100).toFixed(1)} %); ` +
      `heap ${(leak.heapStart / 2 ** 20).toFixed(1)} → ${(leak.heapEnd / 2 ** 20).toFixed(1)} MiB; ${(leak.ms / 1000).toFixed(1)} s — ${leakOk ? 'PASS' : 'FAIL'}`,
  );
}

if (values.json) writeFileSync(values.json, JSON.stringify({ soak: report, leak }, null, 2));
process.exit(report.ok && leakOk ? 0 : 1);
