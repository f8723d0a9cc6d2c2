/*
 * What every host test does, whatever the runtime: bundle the fixture entry,
 * start the runtime on 127.0.0.1, and drive it with the real longPollLink from
 * this process. Each check is one step of the story a host test tells:
 * (a) typed events through superjson, (b) an idle subscription outliving the
 * default hold without a failure, (c) an unsubscribe stopping the procedure,
 * (d) shutdown answering a held poll at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { expect } from 'vitest';
import { createLongPollClient, recorder } from '../../src';
import type { AppRouter, Message } from './fixtures/app';

const require = createRequire(import.meta.url);

/** The default hold (20 s) plus its largest jitter (1/16) plus a margin: an idle poll has expired by then. */
export const PAST_DEFAULT_HOLD_MS = 26_000;

/** Runtime binaries as their npm packages install them. */
export const binaries = {
  bun: () => require.resolve('bun/bin/bun.exe'),
  // The package's launcher links the binary on first use (its postinstall may not have run); this is that step.
  deno: () => (require('deno/install_api.cjs') as { runInstall(): string }).runInstall(),
  workerd: () => (require('workerd') as { default: string }).default,
};

/**
 * Bundles a fixture entry into one ES module, as a user's build step would
 * (wrangler and `bun build` use esbuild too). The workspace packages resolve
 * through the root tsconfig's `paths` to their sources, as in every other test,
 * so the runtime runs the code under test rather than a stale build.
 */
export async function bundle(entry: string): Promise<{ dir: string; file: string; remove(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'trpc-longpoll-host-'));
  const file = join(dir, 'entry.js');
  await build({
    entryPoints: [fileURLToPath(new URL(`./fixtures/${entry}`, import.meta.url))],
    outfile: file,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    mainFields: ['module', 'main'],
    logLevel: 'silent',
  });
  return { dir, file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface HostProcess {
  child: ChildProcess;
  /** Everything the runtime printed, stdout and stderr. */
  output(): string;
  /** Resolves when the process has exited, with its code (null when a signal ended it). */
  exited: Promise<number | null>;
  /** Kills the process if it still runs. */
  stop(): Promise<void>;
}

/** Starts a runtime; `extraFd` opens a pipe on fd 3 (workerd's control channel). */
export function startProcess(command: string, args: string[], opts: { env?: Record<string, string>; cwd?: string; extraFd?: boolean } = {}): HostProcess {
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe', ...(opts.extraFd ? (['pipe'] as const) : [])],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Waits until the process prints a URL matching `pattern`; fails with its output if it exits or takes too long. */
export async function printedUrl(host: HostProcess, pattern: RegExp, ms = 20_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const match = pattern.exec(host.output());
    if (match) return match[1]!.replace(/\/$/, '');
    if (host.child.exitCode !== null || Date.now() > deadline) throw new Error(`no URL printed; output:\n${host.output()}`);
    await sleep(25);
  }
}

/** Registers teardown for the running test (the test context's `onTestFinished`, which concurrent tests keep apart). */
export type Cleanup = (task: () => void | Promise<void>) => void;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a value, failing after `ms` with the last error. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, ms = 10_000, what = 'a condition'): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(50);
  }
}

interface PollAnswer {
  sentAt: number;
  answeredAt: number;
  status: number;
  retryAfter: string | null;
}

/** The real client of the fixture app, recording every poll it sends (the link's `fetch` option). */
export function hostClient(baseUrl: string) {
  const answers: PollAnswer[] = [];
  const failedPolls: unknown[] = [];
  const client = createLongPollClient<AppRouter>(`${baseUrl}/trpc`, {
    fetch: async (url, init) => {
      const sentAt = Date.now();
      try {
        const res = await fetch(url, init);
        answers.push({ sentAt, answeredAt: Date.now(), status: res.status, retryAfter: res.headers.get('retry-after') });
        return res;
      } catch (error) {
        failedPolls.push(error);
        throw error;
      }
    },
  });
  return { client, answers, failedPolls };
}

export interface HandlerStats {
  heldPolls: number;
  counters: { polls: Record<'news' | 'holdExpired' | 'released' | 'drain' | 'stale', number> };
}

export async function statsOf(baseUrl: string): Promise<HandlerStats> {
  const res = await fetch(`${baseUrl}/stats`);
  return (await res.json()) as HandlerStats;
}

/**
 * (a) and (c): a subscription gets a mutation's event with its `Date` restored
 * by superjson; unsubscribing then stops its procedure — its `finally` runs,
 * which the app's `runs` query shows from outside the runtime — and no other.
 */
export async function deliversTypedEventsThenStops(baseUrl: string): Promise<void> {
  const { client } = hostClient(baseUrl);
  const before = await client.runs.query();
  const messages = recorder<{ id: string; data: Message }>();
  const sub = client.onMessage.subscribe({ room: 'typed' }, messages.callbacks);
  try {
    await messages.untilStarted({ ms: 10_000 });
    expect(await client.runs.query()).toEqual({ started: before.started + 1, ended: before.ended });
    await client.send.mutate({ room: 'typed', text: 'hello' });
    const [event] = await messages.untilData(1, { ms: 10_000 });
    expect(event!.data).toMatchObject({ author: 'anonymous', text: 'hello' });
    expect(event!.data.sentAt).toBeInstanceOf(Date);
    expect(messages.failures()).toEqual([]);
  } finally {
    sub.unsubscribe();
  }
  await eventually(async () => {
    const runs = await client.runs.query();
    return runs.ended === before.ended + 1 && runs.started === before.started + 1;
  }, 10_000, 'the procedure to end');
}

/**
 * (b) An idle subscription, followed from the start of a test. `quietPastTheHold`
 * waits until it has been idle past the default hold, then checks that nothing
 * failed, that the server ended a held poll at its hold, and that the
 * subscription still delivers.
 */
export async function idleSubscription(baseUrl: string) {
  const polls = hostClient(baseUrl);
  const messages = recorder<{ id: string; data: Message }>();
  const sub = polls.client.onMessage.subscribe({ room: 'idle' }, messages.callbacks);
  await messages.untilStarted({ ms: 10_000 });
  const since = Date.now();
  return {
    ...polls,
    messages,
    unsubscribe: () => sub.unsubscribe(),
    async quietPastTheHold(): Promise<void> {
      await sleep(since + PAST_DEFAULT_HOLD_MS - Date.now());
      expect(messages.failures()).toEqual([]);
      expect(polls.failedPolls).toEqual([]);
      expect(polls.answers.map((a) => a.status).filter((status) => status !== 200)).toEqual([]);
      // The poll after the first was held for the whole default hold and answered normally
      // (by now, unless a loaded machine delayed it: then a little later).
      await eventually(async () => (await statsOf(baseUrl)).counters.polls.holdExpired >= 1, 10_000, 'a poll answered at its hold');
      await eventually(async () => polls.answers.some((a) => a.answeredAt - a.sentAt >= 19_000), 10_000, 'a 20 s answer');
      expect(messages.failures()).toEqual([]);
      await polls.client.send.mutate({ room: 'idle', text: 'still here' });
      await messages.untilData(1, { ms: 10_000 });
      expect(messages.data()[0]!.data.text).toBe('still here');
    },
  };
}

/**
 * (d) With a poll held, `shutdown` (a signal, or the handler's `close()`) gets
 * it answered at once: a `200` with a `Retry-After`, long before its 20 s hold.
 */
export async function shutdownAnswersTheHeldPoll(
  idle: Awaited<ReturnType<typeof idleSubscription>>,
  baseUrl: string,
  shutdown: () => Promise<unknown>,
): Promise<void> {
  await eventually(async () => (await statsOf(baseUrl)).heldPolls >= 1, 10_000, 'a held poll');
  const answered = idle.answers.length;
  const started = Date.now();
  await shutdown();
  await eventually(async () => idle.answers.length > answered, 10_000, 'the held poll to be answered');
  const answer = idle.answers[answered]!;
  expect(answer.status).toBe(200);
  expect(answer.retryAfter).not.toBeNull();
  expect(answer.answeredAt - started).toBeLessThan(10_000);
}
