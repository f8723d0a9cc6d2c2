import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const demoDir = fileURLToPath(new URL('..', import.meta.url));
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');

/** Runs `src/main.ts` the way `pnpm demo` does: tsx from the demo folder, with its tsconfig paths. */
function runDemo(): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [tsxCli, 'src/main.ts'], {
      cwd: demoDir,
      env: { ...process.env, NO_COLOR: '1', PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    // The demo must end by itself; a hanging handle would keep it alive.
    const killer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

it('prints the typed events live, shuts down and exits 0 by itself', async () => {
  const { code, signal, stdout, stderr } = await runDemo();
  const context = `stdout:\n${stdout}\nstderr:\n${stderr}`;
  expect(signal, context).toBeNull();
  expect(code, context).toBe(0);

  const lines = stdout.split('\n');
  const linesOf = (channel: string) => lines.filter((line) => new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}  ${channel} `).test(line));

  expect(linesOf('server')[0]).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+\/trpc$/);
  // Chat messages in order, each with its event id and its Date field printed as a time.
  const chatLine = /  (\w+): (.+)  \(id (\S+), sent \d\d:\d\d:\d\d\.\d{3}\)$/;
  const chat = linesOf('chat').flatMap((line) => {
    const match = chatLine.exec(line);
    return match ? [{ text: `${match[1]}: ${match[2]}`, id: match[3]! }] : [];
  });
  expect(chat.map((message) => message.text)).toEqual([
    'bob: hello from bob',
    'ann: hi bob, I see you over long-polling',
    'bob: no WebSocket, no SSE, just POST',
  ]);
  expect(new Set(chat.map((message) => message.id)).size).toBe(3);
  // The ticker's input filter leaves OTHER out. Sorted: the last three are published in one concurrent batch.
  const ticker = linesOf('ticker').filter((line) => line.includes('(at '));
  expect(ticker.map((line) => line.split(/\s+/).slice(2, 4).join(' ')).sort()).toEqual(['POLL 20.01', 'TRPC 11.25', 'TRPC 11.50']);
  // The late reader gets exactly what came after the first message, with the same ids.
  const replayed = linesOf('replay').map((line) => chatLine.exec(line)?.[3]);
  expect(replayed).toEqual([chat[1]?.id, chat[2]?.id]);

  expect(stdout).toContain('unsubscribed; the server stopped every subscription');
  expect(stdout).toMatch(/Done: 3 chat messages, 3 quotes and 2 replayed messages/);
  expect(linesOf('error')).toEqual([]);
}, 30_000);
