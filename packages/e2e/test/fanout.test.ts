import { initTRPC } from '@trpc/server';
import { createRedisEventLog } from '@trpc-longpoll/redis';
import { createMemoryEventLog, type EventLog } from '@trpc-longpoll/server';
import { Redis } from 'ioredis';
import superjson from 'superjson';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { deleteKeys, randomClientId, rawPoller, REDIS_URL, redisAvailable, startServer, uniquePrefix, useCleanup } from '../src';

/**
 * Serialize once (docs/protocol.md §5, "Fan-out"): an event that reaches many
 * runs in one turn is serialized once for all of them, with the router's own
 * transformer (superjson here, Dates and all).
 */
type Topics = { [K: `t:${string}`]: { n: number; at: Date } };
const cleanup = useCleanup();
const redisUp = await redisAvailable('fan-out tests');

function countingRouter(log: EventLog<Topics>) {
  const counts = { serialized: 0 };
  const transformer = {
    ...superjson,
    serialize: (value: unknown) => {
      counts.serialized++;
      return superjson.serialize(value);
    },
  };
  const t = initTRPC.create({ transformer });
  const router = t.router({
    onTopic: t.procedure.input(z.object({ topic: z.string() })).subscription(async function* ({ input, signal }) {
      yield* log.subscribe(`t:${input.topic}`, { signal });
    }),
  });
  return { router, counts };
}

async function subscribers(url: string, count: number, topic: string) {
  const raw = rawPoller((req) => fetch(req), url);
  return Promise.all(
    Array.from({ length: count }, async () => {
      const client = randomClientId();
      const sub = { key: 's', path: 'onTopic', input: { json: { topic } } };
      const first = await raw.poll(client, 1, [sub], { minor: 1 });
      const { run, events } = first.json.results.s;
      const cursor = { run, seq: events.length, lastEventId: events.at(-1).id };
      return () => raw.poll(client, 2, [{ ...sub, cursor }], { minor: 1, hold: 5_000 });
    }),
  );
}

const logs: Record<string, () => EventLog<Topics>> = {
  memory: () => createMemoryEventLog<Topics>(),
  ...(redisUp
    ? {
        redis: () => {
          const prefix = uniquePrefix('fanout');
          cleanup(async () => {
            const redis = new Redis(REDIS_URL);
            await deleteKeys(redis, prefix);
            redis.disconnect();
          });
          return createRedisEventLog<Topics>({ redis: REDIS_URL, prefix, serializer: { serialize: superjson.stringify, deserialize: superjson.parse } });
        },
      }
    : {}),
};

describe.each(Object.keys(logs))('%s log', (name) => {
  it('one event to 100 subscribers of a topic is serialized once, and each gets it whole', async () => {
    const log = logs[name]!();
    cleanup(() => log.close());
    const { router, counts } = countingRouter(log);
    const server = await startServer({ router, holdMs: 5_000 });
    cleanup(() => server.close());
    const polls = await subscribers(server.url, 100, 'fan');
    const held = polls.map((poll) => poll());
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = counts.serialized;
    const at = new Date(1_700_000_000_000);
    await log.publish('t:fan', { n: 1, at });
    const answers = await Promise.all(held);
    expect(counts.serialized - before).toBe(1);
    for (const answer of answers) {
      const [event] = answer.json.results.s.events;
      expect(superjson.deserialize(event.data)).toEqual({ n: 1, at });
    }
  }, 30_000);
});

describe('the rule for values mutated after they were yielded', () => {
  it('an object is taken as it is when first serialized in a turn; yielded again in a later turn, as it is then', async () => {
    const log = createMemoryEventLog<Topics>();
    const { router } = countingRouter(log);
    const server = await startServer({ router, holdMs: 2_000 });
    cleanup(() => server.close());
    const raw = rawPoller((req) => fetch(req), server.url);
    const client = randomClientId();
    const sub = { key: 's', path: 'onTopic', input: { json: { topic: 'mut' } } };
    const first = await raw.poll(client, 1, [sub], { minor: 1 });
    let cursor = { run: first.json.results.s.run as string, seq: 1, lastEventId: first.json.results.s.events[0].id as string };
    const shared = { n: 1, at: new Date(0) };
    const seen: number[] = [];
    for (const [poll, n] of [[2, 1], [3, 2]] as const) {
      shared.n = n;
      await log.publish('t:mut', shared);
      const answer = await raw.poll(client, poll, [{ ...sub, cursor }], { minor: 1, hold: 2_000 });
      const [event] = answer.json.results.s.events as { seq: number; id: string; data: never }[];
      seen.push(superjson.deserialize<{ n: number }>(event!.data).n);
      cursor = { ...cursor, seq: event!.seq, lastEventId: event!.id };
    }
    expect(seen).toEqual([1, 2]);
  });
});
