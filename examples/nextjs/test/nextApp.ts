import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * The example as users run it: `next build`, then `next start` on
 * 127.0.0.1. The build is the slow part (~30 s on two cores), so it runs once
 * for any number of test files and is kept while nothing it is made of changes.
 */

const app = fileURLToPath(new URL('..', import.meta.url));
const repo = join(app, '../..');
const nextBin = join(app, 'node_modules/next/dist/bin/next');
const stamp = join(app, '.next/longpoll-test-build');
const lock = join(app, '.next-build.lock');
const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1' };

/** What the build is made of: the app and the library sources its tsconfig maps in. */
const INPUTS = ['examples/nextjs/src', 'examples/nextjs/next.config.ts', 'examples/nextjs/tsconfig.json', 'examples/nextjs/package.json'].concat(
  ['protocol', 'server', 'client'].map((pkg) => `packages/${pkg}/src`),
);

async function filesUnder(path: string): Promise<string[]> {
  if (!(await stat(path)).isDirectory()) return [path];
  const entries = await readdir(path, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

async function inputsHash(): Promise<string> {
  const hash = createHash('sha256');
  const files = (await Promise.all(INPUTS.map((p) => filesUnder(join(repo, p))))).flat().sort();
  for (const file of files) hash.update(relative(repo, file)).update('\0').update(await readFile(file)).update('\0');
  return hash.digest('hex');
}

/** A directory made atomically is the lock; one left by a killed run is taken over after a while. */
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch {
      const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > 5 * 60_000) await rm(lock, { recursive: true, force: true });
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** Runs `next build` unless `.next` already holds a build of the current sources. */
export function buildOnce(): Promise<void> {
  return withLock(async () => {
    const hash = await inputsHash();
    if (existsSync(stamp) && (await readFile(stamp, 'utf8')) === hash) return;
    await new Promise<void>((resolve, reject) => {
      execFile(process.execPath, [nextBin, 'build'], { cwd: app, env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
        error ? reject(new Error(`next build failed:\n${stdout}\n${stderr}`)) : resolve(),
      );
    });
    await writeFile(stamp, hash);
  });
}

/** `next start` takes no port 0: ask the OS for a free port and hand it over. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

export interface NextServer {
  url: string;
  /** Everything the server printed. */
  output(): string;
  /** Sends SIGTERM, as a container runtime does, and resolves with the exit code once the process is gone. */
  terminate(): Promise<number | null>;
  /** Whether the process is still running. */
  running(): boolean;
  /** SIGTERM, then SIGKILL if the process is still there after `graceMs`: for cleanup after a failed test. */
  stop(graceMs?: number): Promise<void>;
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Starts `next start` on 127.0.0.1 and resolves once it answers. */
export async function startNext(): Promise<NextServer> {
  const port = await freePort();
  const child = spawn(process.execPath, [nextBin, 'start', '-H', '127.0.0.1', '-p', String(port)], { cwd: app, env });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`next start exited with ${child.exitCode}:\n${output}`);
    const up = await fetch(`${url}/api/trpc/subscriptions`).then((r) => r.ok, () => false);
    if (up) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`next start did not answer within 30 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    url,
    output: () => output,
    running: () => child.exitCode === null && child.signalCode === null,
    async terminate() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited(child);
    },
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      child.kill('SIGTERM');
      await exited(child);
      clearTimeout(timer);
    },
  };
}
