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
 * cannot rebuild, except untracked events not yet delivered.
 */
export class Session {
  readonly runs = new Map<string, Run>();
  /** Number of the newest poll seen; older polls are answered empty. */
  lastPoll = -1;
  held: HeldPoll | null = null;
  lastSeen = Date.now();

  wake = (): void => {
    this.held?.wake();
  };

  cancelRun(key: string): void {
    const run = this.runs.get(key);
    if (!run) return;
    this.runs.delete(key);
    run.cancel();
  }

  cancelAll(): void {
    for (const key of [...this.runs.keys()]) this.cancelRun(key);
  }
}
