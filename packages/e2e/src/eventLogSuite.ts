import { TRPCError, type TrackedEnvelope } from '@trpc/server';
import { afterEach, describe, expect, it } from 'vitest';
import { EventLogGoneError, EventLogResetError, isBookmark, markBookmarks, type EventLog } from '@trpc-longpoll/server';

export interface EventLogHarness {
  /** A fresh log that shares nothing with logs made for other tests. */
  create(opts: { maxEvents: number; resetGraceMs: number }): Promise<EventLog<any>>;
  /** A well-formed cursor one event past `id`, which the log has never minted (as after restoring an older copy). */
  aheadOf(id: string): string;
  /**
   * Loses every stored event, as a restart does to the memory log and
   * FLUSHALL does to Redis, and returns the log to use from then on.
   */
  forget(log: EventLog<any>, opts: { maxEvents: number; resetGraceMs: number }): Promise<EventLog<any>>;
}

type Topics = { [K: `room:${string}`]: { text: string; n: number } };
type Msg = Topics[`room:${string}`];
type Iter = AsyncIterator<TrackedEnvelope<Msg>>;

const GRACE = 300;

/**
 * The behaviour every `EventLog` must have, run against each implementation
 * (in-memory and Redis) with the same expectations.
 */
export function eventLogSuite(name: string, harness: EventLogHarness): void {
  describe(`EventLog behaviour: ${name}`, () => {
    const cleanups: (() => Promise<void> | void)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    async function makeLog(maxEvents = 1_000, resetGraceMs = GRACE): Promise<EventLog<Topics>> {
      const log = (await harness.create({ maxEvents, resetGraceMs })) as EventLog<Topics>;
      cleanups.push(() => log.close());
      return log;
    }

    function open(log: EventLog<Topics>, topic: `room:${string}`, lastEventId?: string | null): { iter: Iter; abort: () => void } {
      const controller = new AbortController();
      const iter = log.subscribe(topic, { lastEventId, signal: controller.signal })[Symbol.asyncIterator]();
      const abort = () => {
        controller.abort();
        void iter.return?.(undefined);
      };
      cleanups.push(abort);
      return { iter, abort };
    }

    async function take(iter: Iter, count: number): Promise<{ id: string; data: Msg }[]> {
      const out: { id: string; data: Msg }[] = [];
      while (out.length < count) {
        const step = await iter.next();
        if (step.done) throw new Error(`iteration ended after ${out.length} of ${count} events`);
        out.push({ id: step.value[0], data: step.value[1] });
      }
      return out;
    }

    async function publishAll(log: EventLog<Topics>, topic: `room:${string}`, from: number, to: number): Promise<string[]> {
      const ids: string[] = [];
      for (let n = from; n <= to; n++) ids.push(await log.publish(topic, { text: `m${n}`, n }));
      return ids;
    }

    it('delivers events published after the subscription started, with the ids publish returned', async () => {
      const log = await makeLog();
      await publishAll(log, 'room:a', 1, 2);
      const { iter } = open(log, 'room:a');
      const first = iter.next();
      const ids = await publishAll(log, 'room:a', 3, 5);
      const got = [{ id: (await first).value![0], data: (await first).value![1] }, ...(await take(iter, 2))];
      expect(got.map((e) => e.data.n)).toEqual([3, 4, 5]);
      expect(got.map((e) => e.id)).toEqual(ids);
      expect(new Set(ids).size).toBe(3);
    });

    it('replays what came after lastEventId, then follows live', async () => {
      const log = await makeLog();
      const ids = await publishAll(log, 'room:a', 1, 5);
      const { iter } = open(log, 'room:a', ids[1]);
      expect((await take(iter, 3)).map((e) => e.data.n)).toEqual([3, 4, 5]);
      const next = iter.next();
      const [id6] = await publishAll(log, 'room:a', 6, 6);
      const step = await next;
      expect(step.value![0]).toBe(id6);
      expect(step.value![1]).toEqual({ text: 'm6', n: 6 });
    });

    it('resuming from the newest id replays nothing and waits for the next event', async () => {
      const log = await makeLog();
      const ids = await publishAll(log, 'room:a', 1, 3);
      const { iter } = open(log, 'room:a', ids[2]);
      const next = iter.next();
      await publishAll(log, 'room:a', 4, 4);
      expect((await next).value![1].n).toBe(4);
    });

    it('head(): subscribing from it gives exactly what was published after it, however late iteration starts', async () => {
      const log = await makeLog();
      const start = await log.head('room:h');
      await publishAll(log, 'room:h', 1, 2);
      const head = await log.head('room:h');
      const ids = await publishAll(log, 'room:h', 3, 4);
      expect((await take(open(log, 'room:h', start).iter, 4)).map((e) => e.data.n)).toEqual([1, 2, 3, 4]);
      expect((await take(open(log, 'room:h', head).iter, 2)).map((e) => e.id)).toEqual(ids);
      expect(await log.head('room:h')).toBe(ids[1]);
    });

    /** A subscription whose signal a long-poll run of a revision-1 client would have marked. */
    function openMarked(log: EventLog<Topics>, topic: `room:${string}`, lastEventId?: string | null) {
      const controller = new AbortController();
      const calls: string[] = [];
      markBookmarks(controller.signal, { claim: () => calls.push('claim'), settle: () => calls.push('settle') });
      const iter = log.subscribe(topic, { lastEventId, signal: controller.signal })[Symbol.asyncIterator]();
      cleanups.push(() => {
        controller.abort();
        void iter.return?.(undefined);
      });
      return { iter, calls };
    }

    it('bookmarks: "from now" under a marked signal claims before its first await, yields a bookmark at the head first, then settles', async () => {
      const log = await makeLog();
      await publishAll(log, 'room:b', 1, 2);
      const head = await log.head('room:b');
      const { iter, calls } = openMarked(log, 'room:b');
      const first = iter.next();
      expect(calls).toEqual(['claim']);
      const step = await first;
      expect(isBookmark(step.value)).toBe(true);
      expect(step.value![0]).toBe(head);
      const next = iter.next();
      const ids = await publishAll(log, 'room:b', 3, 3);
      expect((await next).value![0]).toBe(ids[0]);
      expect(calls).toEqual(['claim', 'settle']);
      // The bookmark is a cursor like any id: a run started from it elsewhere replays what came after.
      expect((await take(open(log, 'room:b', head).iter, 1)).map((e) => e.id)).toEqual(ids);
    });

    it('bookmarks: a marked subscription with lastEventId yields none and settles at once; an unmarked one never yields any', async () => {
      const log = await makeLog();
      const ids = await publishAll(log, 'room:c', 1, 2);
      const marked = openMarked(log, 'room:c', ids[0]);
      const step = marked.iter.next();
      expect(marked.calls).toEqual(['claim', 'settle']);
      expect((await step).value![0]).toBe(ids[1]);
      const plain = open(log, 'room:c');
      const next = plain.iter.next();
      const [id3] = await publishAll(log, 'room:c', 3, 3);
      const value = (await next).value!;
      expect(isBookmark(value)).toBe(false);
      expect(value[0]).toBe(id3);
    });

    it('keeps topics apart', async () => {
      const log = await makeLog();
      const a = open(log, 'room:a');
      const b = open(log, 'room:b');
      const nextA = a.iter.next();
      const nextB = b.iter.next();
      await log.publish('room:b', { text: 'for b', n: 1 });
      await log.publish('room:a', { text: 'for a', n: 1 });
      expect((await nextA).value![1].text).toBe('for a');
      expect((await nextB).value![1].text).toBe('for b');
    });

    it('gives every subscriber every event exactly once, in order, under concurrent publishing', async () => {
      const log = await makeLog();
      const ids = await publishAll(log, 'room:x', 1, 10);
      // Subscribers join at different points of the history and while publishing goes on.
      const subscribers = [null, ids[0]!, ids[4]!, ids[9]!].map((cursor) => ({ cursor, sub: open(log, 'room:x', cursor) }));
      const reading = subscribers.map(({ cursor, sub }) =>
        take(sub.iter, 60 - (cursor === null ? 10 : ids.indexOf(cursor) + 1)),
      );
      // Give the "from now" subscriber its starting point before anything else is published.
      await new Promise((resolve) => setTimeout(resolve, 50));
      await Promise.all([publishAll(log, 'room:x', 11, 35), publishAll(log, 'room:y', 1, 5)]);
      await publishAll(log, 'room:x', 36, 60);
      const results = await Promise.all(reading);
      for (const [index, got] of results.entries()) {
        const cursor = subscribers[index]!.cursor;
        const start = cursor === null ? 11 : ids.indexOf(cursor) + 2;
        expect(got.map((e) => e.data.n)).toEqual(Array.from({ length: 61 - start }, (_, i) => start + i));
      }
    });

    it('loses no wake-up when events land while a subscriber reads its backlog', async () => {
      const log = await makeLog();
      let cursor = (await publishAll(log, 'room:r', 1, 1))[0]!;
      for (let round = 0; round < 20; round++) {
        const { iter, abort } = open(log, 'room:r', cursor);
        // The publish races the subscription's first read.
        const [got] = await Promise.all([take(iter, 1), log.publish('room:r', { text: 'race', n: round })]);
        expect(got[0]!.data.n).toBe(round);
        cursor = got[0]!.id;
        abort();
      }
    });

    it('ends the iteration when the signal aborts, also while waiting', async () => {
      const log = await makeLog();
      const { iter, abort } = open(log, 'room:a');
      const next = iter.next();
      await new Promise((resolve) => setTimeout(resolve, 30));
      abort();
      expect(await next).toEqual({ done: true, value: undefined });
    });

    it('fails with "gone" when events after the cursor were dropped by retention, never skipping', async () => {
      const log = await makeLog(3);
      const ids = await publishAll(log, 'room:g', 1, 6);
      // Events 4..6 are retained: a cursor at 3 still works, one at 2 or 1 has lost events.
      const ok = open(log, 'room:g', ids[2]);
      expect((await take(ok.iter, 3)).map((e) => e.data.n)).toEqual([4, 5, 6]);
      const gone = open(log, 'room:g', ids[0]);
      const error = await gone.iter.next().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(EventLogGoneError);
      expect(error).toBeInstanceOf(TRPCError);
      expect((error as EventLogGoneError).cursorReason).toBe('gone');
      expect(Object.hasOwn(error as object, 'cursorReason')).toBe(true);
      expect((error as TRPCError).code).toBe('CONFLICT');
    });

    it('fails with "gone" when a live subscriber falls behind retention', async () => {
      const log = await makeLog(3);
      const { iter } = open(log, 'room:slow');
      const first = iter.next();
      await publishAll(log, 'room:slow', 1, 1);
      expect((await first).value![1].n).toBe(1);
      await publishAll(log, 'room:slow', 2, 10);
      await expect(iter.next()).rejects.toBeInstanceOf(EventLogGoneError);
    });

    it('fails with "reset" after the grace period when the cursor is ahead of the log', async () => {
      const log = await makeLog(1_000, GRACE);
      const [id] = await publishAll(log, 'room:h', 1, 1);
      const { iter } = open(log, 'room:h', harness.aheadOf(id!));
      const error = await iter.next().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(EventLogResetError);
      expect((error as EventLogResetError).cursorReason).toBe('reset');
      expect(Object.hasOwn(error as object, 'cursorReason')).toBe(true);
    });

    it('fails with "reset" for an id it did not mint', async () => {
      const log = await makeLog();
      const { iter } = open(log, 'room:h', 'not-an-id');
      await expect(iter.next()).rejects.toBeInstanceOf(EventLogResetError);
    });

    it('fails with "reset" for a cursor from before the log lost its events', async () => {
      const options = { maxEvents: 1_000, resetGraceMs: GRACE };
      let log = await makeLog(options.maxEvents, options.resetGraceMs);
      const ids = await publishAll(log, 'room:f', 1, 3);
      log = await harness.forget(log, options);
      cleanups.push(() => log.close());
      // Nothing published since: the cursor is ahead of the (empty) log.
      await expect(open(log, 'room:f', ids[2]).iter.next()).rejects.toBeInstanceOf(EventLogResetError);
      // Events published since belong to another history, even if as many exist again.
      await publishAll(log, 'room:f', 1, 5);
      await expect(open(log, 'room:f', ids[2]).iter.next()).rejects.toBeInstanceOf(EventLogResetError);
      await expect(open(log, 'room:f', ids[0]).iter.next()).rejects.toBeInstanceOf(EventLogResetError);
    });

    it('ends subscriptions on close', async () => {
      const log = await harness.create({ maxEvents: 10, resetGraceMs: GRACE });
      const { iter } = open(log as EventLog<Topics>, 'room:c');
      const next = iter.next().then(
        (step) => ({ step }),
        (error: unknown) => ({ error }),
      );
      await new Promise((resolve) => setTimeout(resolve, 30));
      await log.close();
      const outcome = await next;
      expect('error' in outcome || ('step' in outcome && outcome.step.done)).toBe(true);
      await expect(log.publish('room:c', { text: 'late', n: 1 })).rejects.toThrow();
    });
  });
}
