import type { ResolvedOptions } from './options';

/** Which budget refused, for the answer's message and for the operator's counters. */
export type Refusal =
  | { scope: 'process'; budget: 'sessions' | 'runs' | 'polls' }
  | { scope: 'identity'; budget: 'sessions' | 'runs' };

interface Share {
  sessions: number;
  runs: number;
}

/**
 * What every client costs, counted where it is spent: sessions and running
 * procedures per process and per identity, buffered event bytes per process.
 * Admission asks before the work is done; what was admitted is given back
 * exactly once by whoever ends it (a session's expiry, a run's removal).
 */
export class Ledger {
  sessions = 0;
  runs = 0;
  bufferedBytes = 0;
  private readonly shares = new Map<string, Share>();
  /** Runs waiting for buffered bytes to fall under the process budget. */
  private readonly starved = new Set<() => void>();

  constructor(private readonly options: ResolvedOptions) {}

  private share(identity: string): Share {
    let share = this.shares.get(identity);
    if (!share) {
      share = { sessions: 0, runs: 0 };
      this.shares.set(identity, share);
    }
    return share;
  }

  private settle(identity: string, share: Share): void {
    if (share.sessions === 0 && share.runs === 0) this.shares.delete(identity);
  }

  admitSession(identity: string): Refusal | null {
    return this.admit('sessions', identity, this.options.maxSessions, this.options.maxSessionsPerIdentity);
  }

  releaseSession(identity: string): void {
    this.release('sessions', identity);
  }

  admitRun(identity: string): Refusal | null {
    return this.admit('runs', identity, this.options.maxRuns, this.options.maxRunsPerIdentity);
  }

  releaseRun(identity: string): void {
    this.release('runs', identity);
  }

  private admit(budget: keyof Share, identity: string, processLimit: number, identityLimit: number): Refusal | null {
    if (this[budget] >= processLimit) return { scope: 'process', budget };
    const share = this.share(identity);
    if (share[budget] >= identityLimit) {
      this.settle(identity, share);
      return { scope: 'identity', budget };
    }
    this[budget]++;
    share[budget]++;
    return null;
  }

  private release(budget: keyof Share, identity: string): void {
    const share = this.shares.get(identity);
    if (!share) return;
    this[budget]--;
    share[budget]--;
    this.settle(identity, share);
  }

  /** Whether runs may pull more events into their buffers. */
  get bytesAvailable(): boolean {
    return this.bufferedBytes < this.options.maxTotalBufferedBytes;
  }

  addBytes(bytes: number): void {
    this.bufferedBytes += bytes;
  }

  releaseBytes(bytes: number): void {
    this.bufferedBytes -= bytes;
    if (this.starved.size === 0 || !this.bytesAvailable) return;
    const waiting = [...this.starved];
    this.starved.clear();
    for (const resume of waiting) resume();
  }

  /** Calls `resume` once buffered bytes are under the process budget again; returns a function that stops waiting. */
  waitForBytes(resume: () => void): () => void {
    this.starved.add(resume);
    return () => this.starved.delete(resume);
  }
}
