import { waitUntil } from '@trpc-longpoll/protocol';
import type { Redis } from 'ioredis';
import { compareStreamIds } from './streamIds';

interface Waiter {
  /** Wake when the stream has an entry after this id. */
  after: string;
  wake: () => void;
}

interface WatchedStream {
  /** Subscriptions of this process following the stream. */
  interest: number;
  /** Highest entry id the reader has seen (or was asked to start from); null until the first wait. */
  seen: string | null;
  waiters: Set<Waiter>;
}

export interface StreamWakerOptions {
  /** Longest single `XREAD BLOCK`, in ms; it also bounds how late a new stream joins if an unblock is lost. */
  blockMs: number;
  /** Entries one `XREAD` returns per stream; they are only looked at for their ids. */
  count: number;
}

/**
 * One blocking reader per process. A single dedicated connection runs
 * `XREAD BLOCK` over every stream some subscription of this process is
 * waiting on and wakes the waiters; the subscriptions then read the entries
 * themselves, checking numbering and epoch, so the reader is only a hint
 * and never the source of truth. When a stream joins, the running `XREAD`
 * is cut short with `CLIENT UNBLOCK` from the command connection.
 *
 * No wake-up is lost: a waiter states the last id it has read, and the
 * reader's position in that stream is never past it (a waiter behind the
 * reader is woken at once), so an entry written between the subscriber's
 * read and its wait is still reported.
 */
export class StreamWaker {
  private readonly streams = new Map<string, WatchedStream>();
  private closed = false;
  private running = false;
  /** Counts `XREAD` calls; an unblock is only meant for the one it was sent for. */
  private generation = 0;
  private blockingGeneration: number | null = null;
  private unblockFor: number | null = null;
  private readerId: number | null = null;
  private idle: (() => void) | null = null;
  /** Fails the running read when the reader's connection closes. */
  private lost: (() => void) | null = null;
  /** Counts streams joining the read set, so the loop can tell its read set is stale. */
  private joins = 0;

  constructor(
    private readonly reader: Redis,
    private readonly commands: Redis,
    private readonly opts: StreamWakerOptions,
  ) {
    reader.on('close', () => {
      // A reconnected reader is a new client with a new id, and ioredis never settles a
      // command it does not resend (the reader is made with autoResendUnfulfilledCommands off).
      this.readerId = null;
      this.lost?.();
    });
  }

  /** Declares that a subscription follows `key`; keeps the stream in the read set until released. */
  watch(key: string): () => void {
    let stream = this.streams.get(key);
    if (!stream) this.streams.set(key, (stream = { interest: 0, seen: null, waiters: new Set() }));
    stream.interest++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      stream.interest--;
      if (stream.interest === 0 && this.streams.get(key) === stream) this.streams.delete(key);
    };
  }

  /**
   * Resolves once the reader has seen an entry after `after` on `key` (a
   * watched stream), the signal aborts, the waker closes, or `ms` passes.
   * `confirmedEnd`: the caller has just read nothing after `after`, so if
   * the reader claims to have seen more, its position is stale (the stream
   * was flushed or restored) and it restarts from `after` instead of
   * waking the caller into an endless re-read.
   */
  wait(key: string, after: string, signal: AbortSignal | undefined, ms: number, confirmedEnd = false): Promise<void> {
    const stream = this.streams.get(key);
    if (!stream || this.closed || signal?.aborted) return Promise.resolve();
    const seenBeyond = stream.seen !== null && compareStreamIds(stream.seen, after) > 0;
    if (seenBeyond && !confirmedEnd) return Promise.resolve();
    const joining = stream.seen === null || seenBeyond;
    if (joining) {
      stream.seen = after;
      this.joins++;
    }
    const woken = waitUntil({
      signal,
      ms,
      register: (wake) => {
        const waiter: Waiter = { after, wake };
        stream.waiters.add(waiter);
        return () => stream.waiters.delete(waiter);
      },
    });
    this.ensureRunning();
    if (joining) this.interrupt();
    return woken;
  }

  close(): void {
    this.closed = true;
    this.wakeAll();
    this.idle?.();
  }

  private wakeAll(): void {
    for (const stream of this.streams.values()) {
      for (const waiter of [...stream.waiters]) waiter.wake();
    }
  }

  private ensureRunning(): void {
    if (this.running) {
      this.idle?.();
      return;
    }
    this.running = true;
    void this.loop().finally(() => (this.running = false));
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      const keys: string[] = [];
      const ids: string[] = [];
      const joinsSeen = this.joins;
      // Streams stay in the read set while followed, even with no waiter right now, so a waiter
      // arriving later only needs the reader's progress (`seen`), never a restart.
      for (const [key, stream] of this.streams) {
        if (stream.seen !== null) {
          keys.push(key);
          ids.push(stream.seen);
        }
      }
      if (keys.length === 0) {
        await waitUntil({
          register: (wake) => {
            this.idle = wake;
            return () => (this.idle = null);
          },
        });
        continue;
      }
      let reply: [string, [string, string[]][]][] | null;
      const generation = ++this.generation;
      const lost = new Promise<never>((_, reject) => (this.lost = () => reject(new Error('The reader connection closed'))));
      lost.catch(() => {
        // Observed through the races below.
      });
      /** A command on the reader, abandoned (never settled by ioredis) if the connection drops. */
      const onReader = <T>(command: Promise<T>): Promise<T> => {
        command.catch(() => {
          // Settled by the race when the connection is lost.
        });
        return Promise.race([command, lost]);
      };
      try {
        if (this.readerId === null) this.readerId = Number(await onReader(this.reader.client('ID')));
        this.blockingGeneration = generation;
        const pending = onReader(this.reader.xread('COUNT', this.opts.count, 'BLOCK', this.opts.blockMs, 'STREAMS', ...keys, ...ids));
        // A stream joined while this read set was being built: cut the read short at once.
        if (this.joins !== joinsSeen) this.interrupt();
        reply = (await pending) as typeof reply;
        failures = 0;
      } catch {
        if (this.closed) return;
        // The subscriptions re-read and meet the failure themselves; the reader retries with backoff.
        this.wakeAll();
        failures++;
        await waitUntil({ ms: Math.min(2_000, 50 * 2 ** failures) });
        continue;
      } finally {
        this.blockingGeneration = null;
        this.lost = null;
      }
      for (const [key, entries] of reply ?? []) {
        const stream = this.streams.get(key);
        const last = entries.at(-1)?.[0];
        if (!stream || last === undefined) continue;
        if (stream.seen === null || compareStreamIds(last, stream.seen) > 0) stream.seen = last;
        for (const waiter of [...stream.waiters]) {
          if (compareStreamIds(last, waiter.after) > 0) waiter.wake();
        }
      }
    }
  }

  /** Cuts the running `XREAD` short so the next one includes a stream that just joined. */
  private interrupt(): void {
    const generation = this.blockingGeneration;
    if (generation === null || this.unblockFor === generation) return;
    this.unblockFor = generation;
    void (async () => {
      // The unblock can overtake the XREAD it targets (two connections); retry briefly, the block timeout is the backstop.
      for (let attempt = 0; attempt < 40 && this.blockingGeneration === generation && !this.closed; attempt++) {
        const id = this.readerId;
        if (id !== null) {
          try {
            if (Number(await this.commands.client('UNBLOCK', id)) === 1) return;
          } catch {
            return;
          }
        }
        await waitUntil({ ms: 5 });
      }
    })();
  }
}
