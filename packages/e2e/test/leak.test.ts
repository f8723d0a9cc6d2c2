import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { LeakReport } from '../src';

const root = fileURLToPath(new URL('../../..', import.meta.url));
/** The full 100 000 cycles the reliability bar names (about 25 s of CPU); `LEAK_CYCLES` overrides for a quick local run. */
const cycles = Number(process.env.LEAK_CYCLES ?? 100_000);

describe('leaks', () => {
  it(`${cycles} subscribe/abandon cycles leave no procedure, timer or memory behind`, async () => {
    // Its own process: a clean heap to measure, and --expose-gc.
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', 'packages/e2e/src/chaos/leakCycles.ts', String(cycles)],
      { cwd: root, maxBuffer: 1024 * 1024 },
    );
    const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as LeakReport;
    // Every procedure started was stopped: its `finally` ran (a quarter of the clients just vanished; idle expiry got them).
    expect(report.started).toBeGreaterThanOrEqual(cycles);
    expect(report.finished).toBe(report.started);
    // Only the handler's idle sweeper is left, and close() clears it.
    expect(report.timersAfter).toBeLessThanOrEqual(1);
    expect(report.timersClosed).toBe(0);
    expect(report.rssGrowth, JSON.stringify(report)).toBeLessThan(0.1);
    expect(report.heapEnd - report.heapStart, JSON.stringify(report)).toBeLessThan(2 * 1024 * 1024);
  }, 400_000);
});
