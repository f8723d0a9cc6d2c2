import type { Ledger } from './budgets';
import type { Run } from './run';

/** A poll being held open, waiting for news. */
export interface HeldPoll {
  /** News arrived: answer after the coalescing window. */
  wake(): void;
  /** Answer now. */
  release(): void;
}

/**
 * The server's cache for one client (one link instance): its running
 * subscriptions and its current poll. Losing it loses nothing the cursors
 * cannot rebuild, except untracked events not yet delivered. Every run it
 * holds is counted against `identity` in the ledger until it is removed.
 */
export class Session {
  private readonly runMap = new Map<string, Run>();
  /** Number of the newest poll seen; older polls are answered empty. */
  lastPoll = -1;
  held: HeldPoll | null = null;
  lastSeen = Date.now();
  /** When a poll of this client was last refused (revoked credentials, say); 0 when its last poll was served. */
  refusedAt = 0;

  constructor(
    /** Whom the session's budgets are counted against. */
    readonly identity: string,
    readonly client: string,
    private readonly ledger: Ledger,
  ) {}

  wake = (): void => {
    this.held?.wake();
  };

  get runs(): ReadonlyMap<string, Run> {
    return this.runMap;
  }

  /** Adds a run the ledger has already admitted for this session's identity. */
  addRun(run: Run): void {
    this.removeRun(run.key);
    this.runMap.set(run.key, run);
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
