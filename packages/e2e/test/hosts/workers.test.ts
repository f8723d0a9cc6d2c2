/**
 * Cloudflare Workers, on workerd (the runtime Cloudflare runs, from npm),
 * driven by the real longPollLink from this process.
 *
 * - The recipe of docs/adapters.md: a Worker that hands tRPC requests to one
 *   Durable Object holding the long-poll handler. All of (a)–(d) hold there.
 * - A plain Worker, to record what breaks without one: a procedure runs
 *   inside the request that started it, and once that request has been
 *   answered, workerd cancels whatever another request would wake in it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { deleteKeys, recorder, REDIS_URL, redisAvailable, uniquePrefix } from '../../src';
// The upstash package's loopback stand-in for Upstash's REST API, over the real Redis.
import { startUpstashRest } from '../../../upstash/test/fixture/upstashRest';
import {
  binaries,
  bundle,
  deliversTypedEventsThenStops,
  eventually,
  hostClient,
  idleSubscription,
  PAST_DEFAULT_HOLD_MS,
  shutdownAnswersTheHeldPoll,
  sleep,
  startProcess,
  statsOf,
  type Cleanup,
  type HostProcess,
} from './support';

const bundles: Awaited<ReturnType<typeof bundle>>[] = [];
let plain: Awaited<ReturnType<typeof bundle>>;
let withObject: Awaited<ReturnType<typeof bundle>>;
let withUpstash: Awaited<ReturnType<typeof bundle>>;
beforeAll(async () => {
  bundles.push(
    (plain = await bundle('worker.ts')),
    (withObject = await bundle('durable-object.ts')),
    (withUpstash = await bundle('upstash-worker.ts')),
  );
});
const redis = await redisAvailable('the Workers test with the Upstash log');
const prefix = uniquePrefix('hosts-workers');
afterAll(async () => {
  if (!redis) return;
  const admin = new Redis(REDIS_URL);
  await deleteKeys(admin, prefix);
  admin.disconnect();
});
afterAll(() => bundles.forEach((b) => b.remove()));

interface WorkerdOptions {
  durableObject: boolean;
  nodejsCompat: boolean;
  /** Text bindings (the Worker's `env`); with them, the Worker may also fetch loopback addresses. */
  env?: Record<string, string>;
}

/** A workerd config (Cap'n Proto text) serving one module on 127.0.0.1, port chosen by the system. */
function config(opts: WorkerdOptions): string {
  const flags = opts.nodejsCompat ? '["nodejs_compat"]' : '[]';
  const bindings = Object.entries(opts.env ?? {}).map(([name, text]) => `(name = "${name}", text = "${text}")`);
  if (opts.durableObject) bindings.push('(name = "LONGPOLL", durableObjectNamespace = "LongPollObject")');
  const object = opts.durableObject
    ? `durableObjectNamespaces = [ (className = "LongPollObject", uniqueKey = "trpc-longpoll-test") ],
  durableObjectStorage = (inMemory = void),`
    : '';
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "loopback", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [ (name = "entry.js", esModule = embed "entry.js") ],
  compatibilityDate = "2025-09-01",
  compatibilityFlags = ${flags},
  globalOutbound = "loopback",
  bindings = [ ${bindings.join(', ')} ],
  ${object}
);
`;
}

/** Starts workerd; it reports the port it bound on its control channel (fd 3). */
async function startWorkerd(cleanup: Cleanup, entry: Awaited<ReturnType<typeof bundle>>, opts: WorkerdOptions) {
  const name = `config-${Math.random().toString(36).slice(2)}.capnp`;
  writeFileSync(join(entry.dir, name), config(opts));
  const host: HostProcess = startProcess(binaries.workerd(), ['serve', name, '--control-fd=3', '--verbose'], { cwd: entry.dir, extraFd: true });
  cleanup(() => host.stop());
  let control = '';
  host.child.stdio[3]!.on('data', (chunk: Buffer) => (control += chunk.toString()));
  const port = await eventually(async () => /"event":"listen","socket":"http","port":(\d+)/.exec(control)?.[1], 20_000, `workerd to listen; output: ${host.output()}`);
  return { host, url: `http://127.0.0.1:${port}` };
}

// The tests mostly wait, so they wait together.
describe.concurrent('Cloudflare Workers (workerd)', () => {
  it('with a Durable Object: delivers typed events, outlives the default hold idle, stops procedures on unsubscribe and answers held polls on close()', async ({ onTestFinished: cleanup }) => {
    const { url } = await startWorkerd(cleanup, withObject, { durableObject: true, nodejsCompat: true });
    const idle = await idleSubscription(url);
    cleanup(idle.unsubscribe);

    await deliversTypedEventsThenStops(url);
    await idle.quietPastTheHold();
    // Workers get no shutdown signal; close() is what a deploy hook or an admin route would call.
    await shutdownAnswersTheHeldPoll(idle, url, async () => expect((await fetch(`${url}/close`)).status).toBe(200));
  }, 60_000);

  it('in a plain Worker, a poll is held and answered at its hold, but an event published by another request never reaches the subscription', async ({ onTestFinished: cleanup }) => {
    const { host, url } = await startWorkerd(cleanup, plain, { durableObject: false, nodejsCompat: true });
    const { client, answers, failedPolls } = hostClient(url);
    const messages = recorder();
    const sub = client.onMessage.subscribe({ room: 'plain' }, messages.callbacks);
    cleanup(() => sub.unsubscribe());
    await messages.untilStarted({ ms: 10_000 });
    const since = Date.now();

    await client.send.mutate({ room: 'plain', text: 'from another request' });
    // The procedure started in the first poll's request, which has been answered: workerd refuses to resume it.
    await eventually(async () => host.output().includes('A promise was resolved or rejected from a different request context'), 10_000, 'workerd to warn');

    await sleep(since + PAST_DEFAULT_HOLD_MS - Date.now());
    expect(messages.data()).toEqual([]);
    // Nothing failed, though: the held poll ended at its hold like on any host.
    expect(messages.failures()).toEqual([]);
    expect(failedPolls).toEqual([]);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    await eventually(async () => (await statsOf(url)).counters.polls.holdExpired >= 1, 10_000, 'a poll answered at its hold');
  }, 60_000);

  // The core waits for the end of the turn with setImmediate where the host has it and a zero-delay timer where
  // it does not (workerd without nodejs_compat): an event wakes a held poll at once, and close() works.
  it('without nodejs_compat, a Durable Object wakes a held poll when an event arrives', async ({ onTestFinished: cleanup }) => {
    const { url } = await startWorkerd(cleanup, withObject, { durableObject: true, nodejsCompat: false });
    const { client } = hostClient(url);
    const messages = recorder();
    const sub = client.onMessage.subscribe({ room: 'bare' }, messages.callbacks);
    cleanup(() => sub.unsubscribe());
    await messages.untilStarted({ ms: 10_000 });
    await eventually(async () => (await statsOf(url)).heldPolls >= 1, 10_000, 'a held poll');
    await client.send.mutate({ room: 'bare', text: 'now' });
    await messages.untilData(1, { ms: 8_000 });
  }, 30_000);

  // What the docs say about a log reached over HTTP in a plain Worker. Should this start to deliver,
  // docs/adapters.md (Cloudflare Workers) must say so.
  it.skipIf(!redis)('in a plain Worker, a log reached over HTTP (the Upstash REST log) does not bring another request\'s events either', async ({ onTestFinished: cleanup }) => {
    const rest = await startUpstashRest({ redis: REDIS_URL });
    cleanup(() => rest.close());
    const env = { UPSTASH_URL: rest.url, UPSTASH_TOKEN: rest.token, PREFIX: `${prefix}:` };
    const { host, url } = await startWorkerd(cleanup, withUpstash, { durableObject: false, nodejsCompat: true, env });
    const { client } = hostClient(url);
    const messages = recorder();
    const sub = client.onMessage.subscribe({ room: 'upstash' }, messages.callbacks);
    cleanup(() => sub.unsubscribe());
    await messages.untilStarted({ ms: 10_000 });

    // The log, made by the first request, is shared by every later one; workerd cancels the
    // publish, which waits on work that request began, as hung.
    await expect(client.send.mutate({ room: 'upstash', text: 'from another request' })).rejects.toThrow();
    await eventually(async () => host.output().includes("detected that your Worker's code had hung"), 10_000, 'workerd to report the hang');
    await sleep(3_000);
    expect(messages.data()).toEqual([]);
  }, 30_000);
});
