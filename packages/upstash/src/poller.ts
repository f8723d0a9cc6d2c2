import type { CommandBatcher, Script } from './commands';

type Entry = [id: string, fields: string[]];
/** What the Redis log's read script returns: the topic's epoch, newest number and time, and entries after a position. */
export type ReadReply = [epoch: string | null, n: string | null, ms: string | null, entries: Entry[]];

/** Where a subscription stands, to tell a reply with news from a quiet one. */
export interface Known {
  epoch: string | null;
  n: number;
}

interface Waiter {
  known: Known;
  resolve: (reply: ReadReply | null) => void;
  reject: (error: unknown) => void;
}

interface Group {
  stream: string;
  meta: string;
  after: string;
  waiters: Set<Waiter>;
  /** This position's own backoff: the pause before its next read, and when that read is due. */
  delay: number;
  dueAt: number;
}

export interface PollerOptions {
  readScript: Script;
  readBatch: number;
  /** First delay after news; it doubles on every quiet poll… */
  minPollMs: number;
  /** …up to this. */
  pollIntervalMs: number;
}

/** A reply that tells a subscription at `known` nothing: no entries, same epoch, same newest number. */
export function isQuiet(reply: ReadReply, known: Known): boolean {
  const [epoch, n, , entries] = reply;
  return entries.length === 0 && (epoch ?? null) === known.epoch && Number(n ?? 0) === known.n;
}

/**
 * Stands in for the Redis log's blocking reader where nothing may block (an
 * HTTP request per batch, no connection between them). Each place a
 * subscription waits at (a topic and the id it has read up to) has its own
 * backoff: read `minPollMs` after it was reached, then at doubling pauses up
 * to `pollIntervalMs`, so a quiet topic costs one read a second however busy
 * its neighbours are. One timer per process runs the reads that are due, all
 * in one pipelined request, and hands each waiter the first reply with news.
 * With no waiter there is no timer, so a process with no live subscription
 * sends nothing.
 */
export class Poller {
  private readonly groups = new Map<string, Group>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAt = Infinity;
  private closed = false;
  private polling = false;
  /** Extra work for each scheduled poll (the cluster channel's read), run alongside the reads. */
  onPoll: (() => Promise<void>) | null = null;

  constructor(
    private readonly batcher: CommandBatcher,
    private readonly opts: PollerOptions,
  ) {}

  /** Reads now, batched with whatever else is read in this turn. */
  read(stream: string, meta: string, after: string): Promise<ReadReply> {
    return this.batcher.run<ReadReply>(this.opts.readScript, [stream, meta], [`(${after}`, String(this.opts.readBatch)]);
  }

  /**
   * The first reply, on a scheduled poll, that differs from `known` at
   * `after`; null when the signal aborts, the poller closes or `ms` passes.
   */
  next(stream: string, meta: string, after: string, known: Known, signal: AbortSignal | undefined, ms?: number): Promise<ReadReply | null> {
    if (this.closed || signal?.aborted) return Promise.resolve(null);
    const key = `${stream}\n${after}`;
    let group = this.groups.get(key);
    if (!group) {
      const delay = this.opts.minPollMs;
      this.groups.set(key, (group = { stream, meta, after, waiters: new Set(), delay, dueAt: Date.now() + delay }));
    }
    const joined = group;
    return new Promise<ReadReply | null>((resolve, reject) => {
      const onAbort = () => done(null);
      const waiter: Waiter = {
        known: { ...known },
        resolve: (reply) => done(reply),
        reject: (error) => {
          leave();
          reject(error);
        },
      };
      const timer = ms === undefined ? undefined : setTimeout(() => done(null), ms);
      const leave = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        joined.waiters.delete(waiter);
        if (joined.waiters.size === 0 && this.groups.get(key) === joined) this.groups.delete(key);
        if (this.groups.size === 0) this.stop();
      };
      const done = (reply: ReadReply | null) => {
        leave();
        resolve(reply);
      };
      joined.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.schedule();
    });
  }

  close(): void {
    this.closed = true;
    for (const group of [...this.groups.values()]) for (const waiter of [...group.waiters]) waiter.resolve(null);
    this.stop();
  }

  /** Sets the timer for the earliest read due, unless one is already set that soon (or a poll is under way). */
  private schedule(): void {
    if (this.polling || this.closed || this.groups.size === 0) return;
    let at = Infinity;
    for (const group of this.groups.values()) at = Math.min(at, group.dueAt);
    if (this.timer !== null && this.timerAt <= at) return;
    this.stop();
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      void this.poll();
    }, Math.max(0, at - Date.now()));
  }

  private stop(): void {
    if (this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  private async poll(): Promise<void> {
    this.polling = true;
    try {
      await this.pollOnce();
    } finally {
      this.polling = false;
    }
    this.schedule();
  }

  private async pollOnce(): Promise<void> {
    // Reads due a little later (up to a quarter of their pause) join this request rather than cost one
    // of their own; read together, they stay in step from then on.
    const now = Date.now();
    const groups = [...this.groups.values()].filter((group) => group.dueAt - Math.max(this.opts.minPollMs / 2, group.delay / 4) <= now);
    if (groups.length === 0) return;
    const extra = this.onPoll?.().catch(() => {
      // Best effort: the cluster channel never fails a read.
    });
    const replies = await Promise.allSettled(groups.map((group) => this.read(group.stream, group.meta, group.after)));
    await extra;
    const readAt = Date.now();
    groups.forEach((group, i) => {
      const outcome = replies[i]!;
      let news = false;
      for (const waiter of [...group.waiters]) {
        if (outcome.status === 'rejected') waiter.reject(outcome.reason);
        else if (!isQuiet(outcome.value, waiter.known)) {
          news = true;
          waiter.resolve(outcome.value);
        }
      }
      group.delay = news ? this.opts.minPollMs : Math.min(group.delay * 2, this.opts.pollIntervalMs);
      group.dueAt = readAt + group.delay;
    });
  }
}
