import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DATABASE_URL, postgresAvailable, REDIS_URL, redisAvailable } from '@trpc-longpoll/e2e';

const available = {
  redis: await redisAvailable('examples/multi-instance test on Redis'),
  postgres: await postgresAvailable('examples/multi-instance test on PostgreSQL'),
};
const exampleDir = fileURLToPath(new URL('..', import.meta.url));

describe.each(['redis', 'postgres'] as const)('on the %s log', (log) => {
  it.skipIf(!available[log])('runs two instances, a balancer and three clients, survives a kill -9 and exits 0 by itself', async () => {
    const { code, signal, stdout, stderr } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
      (resolve, reject) => {
        // As `pnpm start` runs it: tsx from the example's folder, with its tsconfig paths.
        const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--log', log], {
          cwd: exampleDir,
          env: { ...process.env, REDIS_URL, DATABASE_URL },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
        // It must end by itself; a leftover handle would keep it alive.
        const killer = setTimeout(() => child.kill('SIGKILL'), 40_000);
        child.once('error', reject);
        child.once('close', (code, signal) => {
          clearTimeout(killer);
          resolve({ code, signal, stdout, stderr });
        });
      },
    );
    const context = `stdout:\n${stdout}\nstderr:\n${stderr}`;
    expect(signal, context).toBeNull();
    expect(code, context).toBe(0);
    expect(stdout).toMatch(/server a\s+kill -9/);
    expect(stdout).toMatch(/OK: 3 clients got all 12 messages exactly once, in order/);
    expect(stdout).toContain(log === 'redis' ? 'event log is in Redis' : 'event log is in PostgreSQL');
  }, 45_000);
});
