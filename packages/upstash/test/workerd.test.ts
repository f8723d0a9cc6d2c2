import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, stop as stopEsbuild } from 'esbuild';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { REDIS_URL, deleteKeys, redisAvailable, uniquePrefix, useCleanup } from '@trpc-longpoll/e2e';
import { startUpstashRest } from './fixture/upstashRest';

const available = await redisAvailable('@trpc-longpoll/upstash workerd test');
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
// The binary itself: killing npm's `bin/workerd` launcher would leave the server running.
const workerdBin = (createRequire(import.meta.url)('workerd') as { default: string }).default;

/**
 * Bundles the worker as a Workers build would, but stricter: a neutral
 * platform, so any `node:` import (or Node builtin) fails the build.
 */
async function bundleWorker(): Promise<{ code: string; inputs: string[] }> {
  const result = await build({
    entryPoints: [here('./fixture/worker.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    // The workspace packages resolve to their sources through the root tsconfig's paths.
    tsconfig: here('../../../tsconfig.json'),
    metafile: true,
    logLevel: 'silent',
  });
  return { code: result.outputFiles[0]!.text, inputs: Object.keys(result.metafile.inputs) };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** workerd serving the bundle on 127.0.0.1, allowed to fetch loopback addresses (where the REST fixture is). */
async function startWorkerd(code: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'tlp-workerd-'));
  const port = await freePort();
  writeFileSync(join(dir, 'worker.js'), code);
  writeFileSync(
    join(dir, 'config.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "loopback", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed "worker.js")],
  compatibilityDate = "2025-01-01",
  globalOutbound = "loopback",
);
`,
  );
  const child: ChildProcess = spawn(workerdBin, ['serve', join(dir, 'config.capnp')], { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await fetch(url, { method: 'HEAD' });
      return { url, stop };
    } catch (error) {
      if (Date.now() > deadline || child.exitCode !== null) {
        await stop();
        throw new Error(`workerd did not start: ${String(error)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

describe.skipIf(!available)('fetch only: the log on Cloudflare Workers (workerd)', () => {
  const cleanup = useCleanup();
  const prefix = uniquePrefix('upstash-workerd');
  const admin = available ? new Redis(REDIS_URL) : undefined;
  afterAll(async () => {
    // esbuild's service process would keep the test worker alive.
    await stopEsbuild();
    if (!admin) return;
    await deleteKeys(admin, prefix);
    admin.disconnect();
  });

  it('bundles without any Node module and follows, publishes and reads back inside workerd', async () => {
    const { code, inputs } = await bundleWorker();
    expect(inputs.filter((input) => input.startsWith('node:'))).toEqual([]);
    expect(inputs.some((input) => input.includes('packages/upstash/src/'))).toBe(true);

    const rest = await startUpstashRest({ redis: REDIS_URL });
    cleanup(() => rest.close());
    const workerd = await startWorkerd(code);
    cleanup(() => workerd.stop());
    const res = await fetch(workerd.url, { method: 'POST', body: JSON.stringify({ url: rest.url, token: rest.token, prefix }) });
    const body = (await res.json()) as { error?: string; head: string; ids: string[]; got: [string, unknown][]; requests: number; hasProcess: boolean };
    expect(body.error).toBeUndefined();
    expect(res.status).toBe(200);
    // No Node here (the nodejs_compat flag is off).
    expect(body.hasProcess).toBe(false);
    expect(body.got).toEqual([
      [body.ids[0], { n: 1 }],
      [body.ids[1], { n: 2 }],
    ]);
    // The ids name what Redis holds.
    const entries = await admin!.xrange(`${prefix}{t:w}:events`, '-', '+');
    const epoch = await admin!.hget(`${prefix}{t:w}:meta`, 'epoch');
    expect(entries.map(([id]) => `${epoch}:${id}`)).toEqual(body.ids);
    expect(body.requests).toBeGreaterThan(0);
  }, 60_000);
});
