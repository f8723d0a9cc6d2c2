/**
 * The figures in the README: what a waiting subscription costs in requests
 * and how late it learns of an event, against the REST fixture on the local
 * Redis (loopback, so the round trip is ~1 ms; add your region's).
 *
 *   node --import tsx packages/upstash/test/measure.ts
 */
import { createUpstashEventLog } from '@trpc-longpoll/upstash';
import { Redis } from 'ioredis';
import { deleteKeys, REDIS_URL, uniquePrefix } from '../../e2e/src/redisEnv';
import { startUpstashRest } from './fixture/upstashRest';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
type Topics = { [K: `t:${string}`]: number };

const rest = await startUpstashRest({ redis: REDIS_URL });
const prefix = uniquePrefix('upstash-measure');
const log = createUpstashEventLog<Topics>({ redis: { url: rest.url, token: rest.token }, prefix });
const publisher = createUpstashEventLog<Topics>({ redis: { url: rest.url, token: rest.token }, prefix });

async function idleCost(topics: number, seconds: number): Promise<{ requests: number; commands: number }> {
  const controllers: AbortController[] = [];
  for (let i = 0; i < topics; i++) {
    // One signal each, as the server gives every run its own.
    const signal = controllers[controllers.push(new AbortController()) - 1]!.signal;
    const iter = log.subscribe(`t:idle${topics}-${i}`, { lastEventId: await log.head(`t:idle${topics}-${i}`), signal });
    void iter[Symbol.asyncIterator]().next();
  }
  await sleep(3_000);
  const before = { requests: log.requests(), commands: rest.commands().evalsha ?? 0 };
  await sleep(seconds * 1_000);
  const cost = { requests: log.requests() - before.requests, commands: (rest.commands().evalsha ?? 0) - before.commands };
  for (const controller of controllers) controller.abort();
  await sleep(100);
  return cost;
}

/** One topic with an event every 100 ms beside quiet ones: the quiet ones keep their own pace. */
async function busyBesideQuiet(quietTopics: number, seconds: number): Promise<{ requests: number; commands: number }> {
  const controllers: AbortController[] = [];
  const follow = async (topic: `t:${string}`) => {
    const signal = controllers[controllers.push(new AbortController()) - 1]!.signal;
    const iter = log.subscribe(topic, { lastEventId: await log.head(topic), signal })[Symbol.asyncIterator]();
    return iter;
  };
  for (let i = 0; i < quietTopics; i++) void (await follow(`t:beside-${i}`)).next();
  const busy = await follow('t:busy');
  await sleep(3_000);
  const before = { requests: log.requests(), commands: rest.commands().evalsha ?? 0 };
  const until = Date.now() + seconds * 1_000;
  for (let n = 0; Date.now() < until; n++) {
    const next = busy.next();
    await publisher.publish('t:busy', n);
    await next;
    await sleep(100);
  }
  // The publisher's commands are not the subscribing process's.
  const published = Math.round((seconds * 1_000) / 100);
  const cost = { requests: log.requests() - before.requests, commands: (rest.commands().evalsha ?? 0) - before.commands - published };
  for (const controller of controllers) controller.abort();
  await sleep(100);
  return cost;
}

/** Publish at a random moment into a quiet topic, time until the waiting subscription has it. */
async function latency(samples: number): Promise<number[]> {
  const out: number[] = [];
  const iter = log.subscribe('t:lat', { lastEventId: await log.head('t:lat') })[Symbol.asyncIterator]();
  for (let i = 0; i < samples; i++) {
    const next = iter.next();
    // Long enough for the poll delay to reach its ceiling, then a random phase within it.
    await sleep(2_000 + Math.random() * 1_000);
    const start = performance.now();
    await publisher.publish('t:lat', i);
    await next;
    out.push(performance.now() - start);
  }
  await iter.return?.(undefined);
  return out;
}

for (const topics of [1, 100]) {
  const { requests, commands } = await idleCost(topics, 10);
  console.log(`${topics} waiting subscription(s): ${requests} requests, ${commands} read commands in 10 s of quiet`);
}
{
  const { requests, commands } = await busyBesideQuiet(99, 10);
  console.log(`1 topic with an event every 100 ms beside 99 quiet ones: ${requests} requests, about ${commands} read commands in 10 s`);
}
const delays = await latency(15);
console.log(`publish → delivery after quiet: median ${median(delays).toFixed(0)} ms, max ${Math.max(...delays).toFixed(0)} ms (15 samples)`);

await log.close();
await publisher.close();
const admin = new Redis(REDIS_URL);
await deleteKeys(admin, prefix);
admin.disconnect();
await rest.close();
