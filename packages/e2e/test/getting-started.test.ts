/**
 * docs/getting-started.md, taken at its word: its three files (server.ts,
 * main.ts, client.ts) compile with `moduleResolution: nodenext` as well as
 * `bundler` (docs.test.ts checks every block under the repository's bundler
 * setting), and, run as the page says, the client prints what the page says
 * it prints.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
// Inside packages/e2e, so the files find the packages a reader installs; gitignored with docs.test.ts's folder.
const dir = join(root, 'packages/e2e/.docs-check', `getting-started-${process.pid}`);

/** The page's `title="…"` blocks, by title. */
function titledBlocks(doc: string): Map<string, string> {
  const blocks = new Map<string, string>();
  const lines = readFileSync(join(root, doc), 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const title = /^```ts title="([^"]+)"/.exec(lines[i]!)?.[1];
    if (!title) continue;
    const body: string[] = [];
    while (lines[++i] !== '```') body.push(lines[i]!);
    blocks.set(title, body.join('\n') + '\n');
  }
  return blocks;
}

function tsc(project: string): Promise<string> {
  const bin = join(root, 'node_modules/typescript/bin/tsc');
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, '-p', project, '--pretty', 'false'], { cwd: dir }, (_error, stdout, stderr) => resolve(stdout + stderr));
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// nodenext resolves the packages through their `exports`, to the built `dist/`: `pnpm check:packages`
// builds it before `pnpm test` in CI (.ci/run). A checkout without a build has nothing to resolve.
const built = ['protocol', 'server', 'client'].every((pkg) => existsSync(join(root, `packages/${pkg}/dist/index.d.ts`)));

let port: number;
beforeAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  port = await freePort();
  for (const [file, code] of titledBlocks('docs/getting-started.md')) {
    // The page listens on and calls port 3000; the test takes a free one.
    writeFileSync(join(dir, file), code.replaceAll('3000', String(port)));
  }
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  const compilerOptions = { noEmit: true, strict: true, skipLibCheck: true, target: 'ES2022', lib: ['ES2022', 'DOM'], types: ['node'] };
  writeFileSync(
    join(dir, 'tsconfig.nodenext.json'),
    JSON.stringify({ compilerOptions: { ...compilerOptions, module: 'nodenext', moduleResolution: 'nodenext' }, include: ['*.ts'] }),
  );
  writeFileSync(
    join(dir, 'tsconfig.bundler.json'),
    JSON.stringify({ compilerOptions: { ...compilerOptions, module: 'esnext', moduleResolution: 'bundler' }, include: ['*.ts'] }),
  );
  // For running: the repository's paths map the packages to their sources, like every other test.
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: '../../../../tsconfig.json', include: ['*.ts'] }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('docs/getting-started.md', () => {
  it('has the three files the page talks about', () => {
    expect([...titledBlocks('docs/getting-started.md').keys()].sort()).toEqual(['client.ts', 'main.ts', 'server.ts']);
  });

  it.skipIf(!built)('compiles under moduleResolution nodenext and bundler, against the built packages', async () => {
    const [nodenext, bundler] = await Promise.all([tsc('tsconfig.nodenext.json'), tsc('tsconfig.bundler.json')]);
    expect(nodenext).toBe('');
    expect(bundler).toBe('');
  }, 60_000);

  it('prints "ann hello" when the client runs against the server', async ({ onTestFinished }) => {
    const tsx = join(root, 'node_modules/tsx/dist/cli.mjs');
    const run = (file: string) => {
      const child = spawn(process.execPath, [tsx, file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      onTestFinished(() => void child.kill('SIGKILL'));
      return { output: () => output };
    };
    run('main.ts');
    await waitUntilListening(port);
    const client = run('client.ts');
    const deadline = Date.now() + 20_000;
    while (!/ ann hello \d{4}-/.test(client.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(client.output()).toMatch(/state: connecting\n(.|\n)*state: pending\n(.|\n)*\S+ ann hello \d{4}-\d\d-\d\dT/);
  }, 40_000);
});

async function waitUntilListening(port: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const answered = await fetch(`http://127.0.0.1:${port}/trpc/nothing`).then(
      () => true,
      () => false,
    );
    if (answered) return;
    if (Date.now() > deadline) throw new Error('the getting-started server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}
