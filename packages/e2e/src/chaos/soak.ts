import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { isLongPollCursorError } from '@trpc-longpoll/client';
import { createLongPollClient } from '../client';
import { startProxy, type Fault } from '../proxy';
import { chaosLogSettings, createChaosLog, dropChaosData, type ChaosLogKind, type ChaosLogSettings } from './logChoice';
import type { ChaosRouter } from './router';
import { formatTallies, isClean, tallyClient, type ClientTally, type Segment, type SubscriptionKind, type SubscriptionRecord } from './tally';

export interface SoakOptions {
  redisUrl: string;
  /** The shared event log. Default Redis (at `redisUrl`); PostgreSQL is at DATABASE_URL. */
  eventLog?: ChaosLogKind;
  clients: number;
  /** Clients whose subscriptions start without `lastEventId` ("from now"), through the same round-robin proxy. Default 2. */
  fromNowClients?: number;
  /** Clients of untracked subscriptions, through a second proxy that hashes on `lp_affinity`. Default 2. */
  untrackedClients?: number;
  subscriptionsPerClient: number;
  topics: number;
  /** Events published on every topic, numbered 1…events. */
  events: number;
  /** Publishing is spread over this long. */
  durationMs: number;
  /** Hold of servers and clients, in ms. */
  holdMs: number;
  /** Share of polls the proxy spoils, 0…1. */
  faultRate: number;
  /** When (share of the events published) the first instance is killed with SIGKILL; it restarts `restartAfterMs` later. */
  killAt: number;
  /** When the second instance is shut down gracefully (SIGTERM, so `close()` drains its polls); it restarts too. */
  drainAt: number;
  restartAfterMs: number;
  /** How long to wait for the last events once publishing is over. */
  settleMs: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface SoakReport {
  options: Omit<SoakOptions, 'log' | 'redisUrl'>;
  tallies: ClientTally[];
  /** Polls the proxy saw, and the faults it injected, by kind. */
  polls: number;
  faults: Record<string, number>;
  /** Instance lifecycle, in ms since the start. */
  timeline: string[];
  elapsedMs: number;
  ok: boolean;
}

/** The repository root, where the instances run from. (Read when needed: under jsdom, importing this module must not resolve file URLs.) */
const root = () => fileURLToPath(new URL('../../../..', import.meta.url));

interface Instance {
  url: string;
  port: number;
  child: ChildProcess;
}

async function startInstance(opts: { port: number; log: ChaosLogSettings; holdMs: number }): Promise<Instance> {
  const { kind, url, namespace } = opts.log;
  const child = spawn(process.execPath, ['--import', 'tsx', 'packages/e2e/src/chaos/instance.ts'], {
    cwd: root(),
    env: { ...process.env, PORT: String(opts.port), CHAOS_LOG: kind, CHAOS_LOG_URL: url, CHAOS_NAMESPACE: namespace, HOLD_MS: String(opts.holdMs) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const match = /^ready (\d+)$/.exec(line);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`A chaos instance exited before it was ready (code ${code})`)));
  });
  return { url: `http://127.0.0.1:${port}`, port, child };
}

function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM, and SIGKILL if it does not go within `ms`. */
async function terminate(child: ChildProcess, ms = 5_000): Promise<void> {
  const exit = stopped(child);
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  await exit;
  clearTimeout(timer);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every way the proxy spoils a poll, picked at random for a `faultRate` share of them. */
function faultPicker(holdMs: number, watchdogMs: number, counts: Record<string, number>) {
  const kinds: [string, Fault][] = [
    ['drop-response', { kind: 'drop-response' }],
    ['cut-mid-body', { kind: 'cut-mid-body' }],
    ['502', { kind: 'status', status: 502 }],
    ['503+retry-after', { kind: 'status', status: 503, retryAfter: 1 }],
    ['503', { kind: 'status', status: 503 }],
    ['504+retry-after', { kind: 'status', status: 504, retryAfter: 1 }],
    ['504', { kind: 'status', status: 504 }],
    // Past the client's watchdog (hold + hold/16 + margin): the client gives up and polls again.
    ['delay-past-watchdog', { kind: 'delay', ms: watchdogMs + Math.max(200, holdMs / 4) }],
  ];
  return (rate: number) =>
    ({ method }: { method: string }): Fault | undefined => {
      if (method !== 'POST' || Math.random() >= rate) return undefined;
      const [name, fault] = kinds[Math.floor(Math.random() * kinds.length)]!;
      counts[name] = (counts[name] ?? 0) + 1;
      return fault;
    };
}

/**
 * Publishes numbered events on a shared event log while clients follow them
 * through a fault-injecting proxy over two instances, one of which is killed
 * and one drained along the way; then counts what each client got.
 */
export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const say = opts.log ?? (() => {});
  const began = Date.now();
  const timeline: string[] = [];
  const mark = (what: string) => {
    const line = `${((Date.now() - began) / 1000).toFixed(1)}s ${what}`;
    timeline.push(line);
    say(line);
  };
  const logSettings = chaosLogSettings(opts.eventLog ?? 'redis', opts.redisUrl);
  const publisher = createChaosLog(logSettings);
  const topics = Array.from({ length: opts.topics }, (_, i) => `chaos:${i}`);
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  const instances: Instance[] = [];

  try {
    // Each subscription starts right after a first event, so "where it started" has an id every instance knows.
    const genesis = new Map<string, string>();
    for (const topic of topics) genesis.set(topic, await publisher.publish(topic, { n: 0 }));

    const start = (port: number) => startInstance({ port, log: logSettings, holdMs: opts.holdMs });
    instances.push(await start(0), await start(0));
    cleanups.push(() => Promise.all(instances.map((instance) => terminate(instance.child))));
    mark(`instances up on ${instances.map((i) => i.port).join(', ')}`);

    const watchdogMarginMs = Math.max(300, opts.holdMs / 4);
    const watchdogMs = opts.holdMs + opts.holdMs / 16 + watchdogMarginMs;
    const faults: Record<string, number> = {};
    const pick = faultPicker(opts.holdMs, watchdogMs, faults);
    let faultRate = 0;
    const proxy = await startProxy({ upstreams: instances.map((i) => i.url), fault: (info) => pick(faultRate)(info) });
    cleanups.push(() => proxy.close());

    // The proxy the untracked clients use: the same instances, each client kept on one by its affinity token.
    const sticky = await startProxy({
      upstreams: instances.map((i) => i.url),
      fault: (info) => pick(faultRate)(info),
      balance: { hashQuery: 'lp_affinity' },
    });
    cleanups.push(() => sticky.close());
    /** The newest event number whose publishing has begun: a subscription started after it is owed the ones after. */
    let publishing = 0;
    const kinds: [SubscriptionKind, number][] = [
      ['tracked', opts.clients],
      ['from-now', opts.fromNowClients ?? 2],
      ['untracked', opts.untrackedClients ?? 2],
    ];
    const clients: { name: string; subscriptions: SubscriptionRecord[] }[] = [];
    const subscriptions = new Set<{ unsubscribe(): void }>();
    let index = 0;
    for (const [kind, count] of kinds) {
      for (let c = 0; c < count; c++, index++) {
        const client = createLongPollClient<ChaosRouter>(kind === 'untracked' ? sticky.url : proxy.url, {
          holdMs: opts.holdMs,
          watchdogMarginMs,
          retry: { initialDelayMs: 50, maxDelayMs: 1_000 },
        });
        const name = `${kind} ${c + 1}`;
        const records: SubscriptionRecord[] = [];
        clients.push({ name, subscriptions: records });
        for (let s = 0; s < opts.subscriptionsPerClient; s++) {
          const topic = topics[(index * opts.subscriptionsPerClient + s) % topics.length]!;
          const record: SubscriptionRecord = { kind, segments: [] };
          records.push(record);
          const follow = () => {
            const segment: Segment = { due: kind === 'tracked' ? 1 : Infinity, events: [] };
            record.segments.push(segment);
            const callbacks = {
              onStarted: () => {
                if (segment.due === Infinity) segment.due = publishing + 1;
              },
              onData: (envelope: unknown) => {
                const data = kind === 'untracked' ? envelope : (envelope as { data: unknown }).data;
                segment.events.push((data as { n: number }).n);
              },
              onError: (error: Error) => {
                subscriptions.delete(sub);
                const typed = isLongPollCursorError(error) && (error.reason === 'resume-lost' || error.reason === 'no-affinity');
                segment.error = { typed };
                say(`${name} subscription ${s + 1} ended: ${typed ? `${(error as { reason?: string }).reason}, subscribing again` : error.message}`);
                if (typed && kind === 'untracked') setTimeout(follow, 100);
              },
            };
            const sub =
              kind === 'untracked'
                ? client.untracked.subscribe({ topic }, callbacks)
                : client.events.subscribe(kind === 'tracked' ? { topic, lastEventId: genesis.get(topic)! } : { topic }, callbacks);
            subscriptions.add(sub);
          };
          follow();
        }
      }
    }
    cleanups.push(() => {
      for (const sub of subscriptions) sub.unsubscribe();
    });
    faultRate = opts.faultRate;
    mark(
      `${kinds.map(([kind, count]) => `${count} ${kind}`).join(', ')} clients × ${opts.subscriptionsPerClient} subscriptions following ${topics.length} topics; fault rate ${opts.faultRate}`,
    );

    const lifecycle: Promise<void>[] = [];
    const restart = (index: number, how: 'SIGKILL' | 'SIGTERM') =>
      (async () => {
        const old = instances[index]!;
        const exit = stopped(old.child);
        old.child.kill(how);
        await exit;
        mark(`instance ${index + 1} ${how === 'SIGKILL' ? 'killed (SIGKILL)' : 'drained and stopped (SIGTERM)'}`);
        await sleep(opts.restartAfterMs);
        instances[index] = await start(old.port);
        mark(`instance ${index + 1} restarted on ${old.port}`);
      })();

    const killAt = Math.max(1, Math.floor(opts.events * opts.killAt));
    const drainAt = Math.max(1, Math.floor(opts.events * opts.drainAt));
    const interval = opts.durationMs / opts.events;
    for (let n = 1; n <= opts.events; n++) {
      const due = began + n * interval;
      publishing = n;
      await Promise.all(topics.map((topic) => publisher.publish(topic, { n })));
      if (n === killAt) lifecycle.push(restart(0, 'SIGKILL'));
      if (n === drainAt) lifecycle.push(restart(1, 'SIGTERM'));
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
    }
    mark(`published ${opts.events} events on each topic`);
    await Promise.all(lifecycle);

    // Complete when every subscription's latest stretch has reached the last event.
    const complete = () => clients.every(({ subscriptions: subs }) => subs.every(({ segments }) => segments.at(-1)?.events.at(-1) === opts.events));
    const deadline = Date.now() + opts.settleMs;
    while (!complete() && Date.now() < deadline) await sleep(100);
    // Anything late (a duplicate, say) has a moment to show up.
    faultRate = 0;
    await sleep(Math.min(1_000, opts.holdMs));
    mark(complete() ? 'every subscription has every event' : 'gave up waiting for the last events');

    const tallies = clients.map(({ name, subscriptions: subs }) => tallyClient(name, subs, opts.events));
    const { log: _log, redisUrl: _url, ...options } = opts;
    const polls = proxy.requests() + sticky.requests();
    return { options, tallies, polls, faults, timeline, elapsedMs: Date.now() - began, ok: tallies.every(isClean) };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await publisher.close();
    await dropChaosData(logSettings);
  }
}

/** The per-client table and the fault counts; the timeline too unless it was already shown as it happened. */
export function formatReport(report: SoakReport, opts: { timeline?: boolean } = {}): string {
  const faults = Object.entries(report.faults)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, count]) => `${kind} ${count}`)
    .join(', ');
  const injected = Object.values(report.faults).reduce((a, b) => a + b, 0);
  return [
    formatTallies(report.tallies),
    '',
    `polls through the proxy: ${report.polls}; faults injected: ${injected} (${faults})`,
    ...(opts.timeline === false ? [] : report.timeline),
    `elapsed: ${(report.elapsedMs / 1000).toFixed(1)} s — ${report.ok ? 'PASS: nothing lost, duplicated or reordered' : 'FAIL'}`,
  ].join('\n');
}
