import { afterTurn, waitUntil } from '@trpc-longpoll/protocol';
import type { Ledger } from './budgets';
import type { Run } from './run';

function cancellableTimeout(fn: () => void, ms: number): () => void {
  const timer = setTimeout(fn, ms);
  return () => clearTimeout(timer);
}

/** A poll being held open, waiting for news. */
export interface HeldPoll {
  /** News arrived: answer after the coalescing window. */
  wake(): void;
  /** Answer now. */
  release(): void;
}

/** Why a hold ended: news (after the coalescing window), its time ran out, a newer poll or `close()` released it, or the client left. */
export type HoldEnd = 'news' | 'expired' | 'released' | 'aborted';

/**
 * The server's cache for one client (one link instance): its running
 * subscriptions and its current poll. Losing it loses nothing the cursors
 * cannot rebuild, except untracked events not yet delivered. Every run it
 * holds is counted against `identity` in the ledger until it is removed.
 */
export class Session {
  private readonly runMap = new Map<string, Run>();
  /** Number of the newest poll seen; older polls are answered empty. */
  private lastPoll = -1;
  held: HeldPoll | null = null;
  lastSeen = Date.now();
  /** When a poll of this client was last refused (revoked credentials, say); 0 when its last poll was served. */
  refusedAt = 0;

  constructor(
    /** Its key in the session table (identity and client id). */
    readonly key: string,
    /** Whom the session's budgets are counted against. */
    readonly identity: string,
    readonly client: string,
    private readonly ledger: Ledger,
    /** Every poll the core holds, across sessions, so closing can answer them all. */
    private readonly heldPolls: Set<HeldPoll>,
  ) {}

  wake = (): void => {
    this.held?.wake();
  };

  get runs(): ReadonlyMap<string, Run> {
    return this.runMap;
  }

  /**
   * Takes poll number `poll` as the client's newest, releasing the poll it
   * holds; false for a stale poll (§5, step 4), which changes nothing.
   */
  admit(poll: number): boolean {
    if (poll <= this.lastPoll) return false;
    this.lastPoll = poll;
    this.lastSeen = Date.now();
    this.refusedAt = 0;
    this.held?.release();
    return true;
  }

  /** Number of the newest poll seen; -1 before the first. */
  get newestPoll(): number {
    return this.lastPoll;
  }

  /** Whether a newer poll of the client has arrived since poll number `poll`. */
  supersedes(poll: number): boolean {
    return this.lastPoll !== poll;
  }

  /**
   * Holds the current poll until a run has news (then the coalescing window:
   * 0 is the end of this event-loop turn, so a synchronous burst travels
   * together), `ms` plus up to a sixteenth of jitter pass (it spreads the
   * wake-ups of polls that started together), `signal` aborts, or a newer poll
   * or `close()` releases it. Resolves with why the hold ended.
   */
  async hold(ms: number, coalesceMs: number, signal: AbortSignal): Promise<HoldEnd> {
    let coalesce: (() => void) | null = null;
    let why: HoldEnd | undefined;
    let ended = false;
    await waitUntil({
      signal,
      ms: ms + Math.random() * (ms / 16),
      register: (release) => {
        const end = (reason: HoldEnd) => () => {
          if (!ended) why ??= reason;
          release();
        };
        const held: HeldPoll = {
          wake: () => {
            coalesce ??= coalesceMs > 0 ? cancellableTimeout(end('news'), coalesceMs) : afterTurn(end('news'));
          },
          release: end('released'),
        };
        this.heldPolls.add(held);
        this.held = held;
        return () => {
          ended = true;
          coalesce?.();
          this.heldPolls.delete(held);
          if (this.held === held) this.held = null;
        };
      },
    });
    return why ?? (signal.aborted ? 'aborted' : 'expired');
  }

  /** Adds a run the ledger has already admitted for this session's identity. */
  addRun(key: string, run: Run): void {
    this.removeRun(key);
    this.runMap.set(key, run);
  }

  /** Stops a run (if it still runs) and gives its budget back. */
  removeRun(key: string): void {
    const run = this.runMap.get(key);
    if (!run) return;
    this.runMap.delete(key);
    run.cancel();
    this.ledger.releaseRun(this.identity);
  }

  /** Ends the session: every run stops and the session's own budget is given back. */
  close(): void {
    for (const key of [...this.runMap.keys()]) this.removeRun(key);
    this.ledger.releaseSession(this.identity);
  }
}
