/**
 * Subscribe/abandon cycles against the fetch handler, driven with hand-made
 * polls (no client link, so 100 000 cycles take seconds), then a check that
 * nothing stayed behind: procedures, timers, memory.
 *
 * Run it in its own process with `--expose-gc`:
 *   node --expose-gc --import tsx packages/e2e/src/chaos/leakCycles.ts [cycles]
 * It prints one JSON line, a `LeakReport`.
 */
import { createHook } from 'node:async_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { initTRPC, tracked } from '@trpc/server';
import { createLongPollHandler } from '@trpc-longpoll/server';
import { randomClientId, rawPoller } from '../raw';

export interface LeakReport {
  cycles: number;
  ms: number;
  /** Procedures started and finished (their `finally` ran). */
  started: number;
  finished: number;
  /** Timers and immediates created by the cycles and still alive after them (the handler's own sweeper is one). */
  timersAfter: number;
  /** Same, once `close()` has run: must be 0. */
  timersClosed: number;
  rssStart: number;
  rssEnd: number;
  heapStart: number;
  heapEnd: number;
  /** (rssEnd − rssStart) / rssStart */
  rssGrowth: number;
}

function collectGarbage(): () => void {
  if (typeof globalThis.gc === 'function') return globalThis.gc;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/**
 * Every `Timeout` and `Immediate` created from now on and not yet destroyed,
 * unref'd ones included (`process.getActiveResourcesInfo()` omits those).
 */
function trackTimers() {
  const live = new Set<number>();
  const hook = createHook({
    init(id, type) {
      if (!measuring && (type === 'Timeout' || type === 'Immediate')) live.add(id);
    },
    destroy(id) {
      live.delete(id);
    },
  });
  hook.enable();
  return { live: () => live.size, stop: () => hook.disable() };
}

/** Set while this file makes timers of its own, which the count leaves out. */
let measuring = false;
function own<T>(make: () => T): T {
  measuring = true;
  try {
    return make();
  } finally {
    measuring = false;
  }
}
const tick = () => new Promise((resolve) => own(() => setImmediate(resolve)));

export async function runLeakCycles(cycles: number, opts: { idleTimeoutMs?: number } = {}): Promise<LeakReport> {
  const gc = collectGarbage();
  const idleTimeoutMs = opts.idleTimeoutMs ?? 300;
  const t = initTRPC.create();
  const stats = { started: 0, finished: 0 };
  const router = t.router({
    /** Parks in an await until its signal aborts, as a procedure waiting on a log does. */
    waits: t.procedure.subscription(async function* ({ signal }) {
      stats.started++;
      try {
        await new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }));
      } finally {
        stats.finished++;
      }
    }),
    /** Yields at once and then waits, so its events sit in the buffer when it is abandoned. */
    yields: t.procedure.subscription(async function* ({ signal }) {
      stats.started++;
      try {
        for (let i = 1; i <= 3; i++) yield tracked(String(i), { i, pad: 'x'.repeat(100) });
        await new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }));
      } finally {
        stats.finished++;
      }
    }),
  });
  const timers = trackTimers();
  const handler = createLongPollHandler({ router, holdMs: 10_000, idleTimeoutMs });
  const raw = rawPoller(handler, 'http://leak.local/');

  let client = randomClientId();
  let poll = 0;
  let key = 0;
  async function cycle(i: number): Promise<void> {
    const path = i % 2 === 0 ? 'waits' : 'yields';
    switch (i % 4) {
      case 0: {
        // Subscribe, then say farewell.
        client = randomClientId();
        poll = 0;
        await raw.poll(client, ++poll, [{ key: String(++key), path }]);
        await raw.poll(client, ++poll, []);
        return;
      }
      case 1: {
        // Subscribe, then leave it out of the next poll (an unsubscribe), which subscribes anew.
        await raw.poll(client, ++poll, [{ key: String(++key), path }]);
        await raw.poll(client, ++poll, [{ key: String(++key), path }]);
        return;
      }
      case 2: {
        // A held poll whose client goes away mid-hold, then the client leaves for good.
        const first = await raw.poll(client, ++poll, [{ key: String(++key), path: 'waits' }]);
        const run = (first.json as { results: Record<string, { run: string }> }).results[String(key)]!.run;
        const controller = new AbortController();
        const held = raw.poll(client, ++poll, [{ key: String(key), path: 'waits', cursor: { run, seq: 0 } }], { hold: 10_000 }, { signal: controller.signal });
        await tick();
        controller.abort();
        await held.catch(() => undefined);
        await raw.poll(client, ++poll, []);
        return;
      }
      default: {
        // Subscribe and vanish without a word: idle expiry must clean up.
        await raw.poll(randomClientId(), 1, [{ key: '1', path }]);
      }
    }
  }

  const warmup = Math.min(2_000, Math.floor(cycles / 10));
  for (let i = 0; i < warmup; i++) await cycle(i);
  const settle = async () => {
    await new Promise((resolve) => own(() => setTimeout(resolve, idleTimeoutMs * 2 + 100)));
    for (let i = 0; i < 3; i++) {
      gc();
      await tick();
    }
  };
  await settle();
  const rssStart = process.memoryUsage().rss;
  const heapStart = process.memoryUsage().heapUsed;

  const began = Date.now();
  for (let i = warmup; i < cycles; i++) await cycle(i);
  const ms = Date.now() - began;
  await settle();
  const rssEnd = process.memoryUsage().rss;
  const heapEnd = process.memoryUsage().heapUsed;
  const timersAfter = timers.live();
  await handler.close();
  await tick();
  const timersClosed = timers.live();
  timers.stop();
  return {
    cycles,
    ms,
    started: stats.started,
    finished: stats.finished,
    timersAfter,
    timersClosed,
    rssStart,
    rssEnd,
    heapStart,
    heapEnd,
    rssGrowth: (rssEnd - rssStart) / rssStart,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const cycles = Number(process.argv[2] ?? 100_000);
  runLeakCycles(cycles).then(
    (report) => console.log(JSON.stringify(report)),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
