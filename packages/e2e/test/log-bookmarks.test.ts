import type { TrackedEnvelope } from '@trpc/server';
import { createRedisEventLog } from '@trpc-longpoll/redis';
import { createMemoryEventLog, isBookmark, markBookmarks, type EventLog } from '@trpc-longpoll/server';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { deleteKeys, REDIS_URL, redisAvailable, uniquePrefix, useCleanup } from '../src';

/**
 * What the event logs do with bookmarks over time (docs/protocol.md §4,
 * "Bookmarks"): a position that moved is repeated after `bookmarkIntervalMs`,
 * so a procedure that filters events still moves its cursor; a quiet topic
 * needs none, because a cursor at its newest event stays valid after
 * retention drops that event.
 */
type Topics = { [K: `t:${string}`]: { n: number } };
const cleanup = useCleanup();
const redisUp = await redisAvailable('event-log bookmark tests');

const logs: Record<string, (opts: { bookmarkIntervalMs?: number; maxAgeMs?: number }) => EventLog<Topics>> = {
  memory: (opts) => createMemoryEventLog<Topics>(opts),
  ...(redisUp
    ? {
        redis: (opts: { bookmarkIntervalMs?: number; maxAgeMs?: number }) => {
          const prefix = uniquePrefix('log-bookmarks');
          cleanup(async () => {
            const redis = new Redis(REDIS_URL);
            await deleteKeys(redis, prefix);
            redis.disconnect();
          });
          return createRedisEventLog<Topics>({
            redis: REDIS_URL,
            prefix,
            bookmarkIntervalMs: opts.bookmarkIntervalMs,
            ...(opts.maxAgeMs ? { retention: { maxAgeMs: opts.maxAgeMs, exact: true } } : {}),
          });
        },
      }
    : {}),
};

function marked(log: EventLog<Topics>, topic: `t:${string}`, lastEventId?: string) {
  const controller = new AbortController();
  markBookmarks(controller.signal, { claim: () => {}, settle: () => {} });
  const iter = log.subscribe(topic, { lastEventId, signal: controller.signal })[Symbol.asyncIterator]() as AsyncIterator<TrackedEnvelope<{ n: number }>>;
  cleanup(() => {
    controller.abort();
    void iter.return?.(undefined);
  });
  return iter;
}

const describeItem = (value: TrackedEnvelope<{ n: number }>) => (isBookmark(value) ? `bookmark ${value[0]}` : `event ${value[0]}`);

describe.each(Object.keys(logs))('%s log', (name) => {
  const make = logs[name]!;

  it('repeats a position that moved once the interval has passed, before the next event', async () => {
    const log = make({ bookmarkIntervalMs: 50 });
    cleanup(() => log.close());
    const ids = [await log.publish('t:p', { n: 1 }), await log.publish('t:p', { n: 2 })];
    const iter = marked(log, 't:p');
    // From now: the bookmark at the head, then only what follows.
    expect(describeItem((await iter.next()).value!)).toBe(`bookmark ${ids[1]}`);
    const third = await log.publish('t:p', { n: 3 });
    expect(describeItem((await iter.next()).value!)).toBe(`event ${third}`);
    await new Promise((resolve) => setTimeout(resolve, 120));
    const fourth = await log.publish('t:p', { n: 4 });
    expect(describeItem((await iter.next()).value!)).toBe(`bookmark ${third}`);
    expect(describeItem((await iter.next()).value!)).toBe(`event ${fourth}`);
  });

  it('a cursor at a quiet topic\'s newest event stays valid after retention dropped that event', async () => {
    const log = make({ maxAgeMs: 100 });
    cleanup(() => log.close());
    const first = await log.publish('t:q', { n: 1 });
    await new Promise((resolve) => setTimeout(resolve, 250));
    // The next publish trims by age: the first event goes, and nothing after the cursor was lost.
    const second = await log.publish('t:q', { n: 2 });
    const iter = marked(log, 't:q', first);
    expect(describeItem((await iter.next()).value!)).toBe(`event ${second}`);
  });
});
