import { TRPCError, isTrackedEnvelope } from '@trpc/server';
import type { Cursor } from '@trpc-longpoll/protocol';
import { errorEndJson, type ErrorShaper, type ErrorSite } from './procedures';
import { randomId } from './ids';

/** An event as it will go on the wire, serialized once however often it is resent. */
export interface BufferedEvent {
  seq: number;
  /** The `tracked()` id, if any. */
  id: string | undefined;
  json: string;
}

/** The process-wide count of buffered bytes that every run adds to and takes from. */
export interface ByteLedger {
  readonly bytesAvailable: boolean;
  addBytes(bytes: number): void;
  releaseBytes(bytes: number): void;
  waitForBytes(resume: () => void): () => void;
}

export interface RunDeps {
  serialize: (value: unknown) => unknown;
  shapeError: ErrorShaper;
  site: ErrorSite;
  /** Most events kept unacknowledged; beyond it the iterator is not pulled (backpressure). */
  maxBuffered: number;
  /** Most bytes kept unacknowledged (`bytesOf` each event); at or beyond it the iterator is not pulled. */
  maxBufferedBytes: number;
  /** Largest one event's JSON may be; a larger one ends the run with `PAYLOAD_TOO_LARGE`. */
  maxEventBytes: number;
  ledger: ByteLedger;
  /** Something a poll could answer with has appeared. */
  onChange: () => void;
}

/** What an event is counted as: its JSON and the objects around it, so byte budgets track memory. */
export function bytesOf(event: BufferedEvent): number {
  return event.json.length + 64;
}

const noop = () => {};

/**
 * One execution of a subscription procedure. It keeps the iterator running
 * between polls and holds what it yields until the client acknowledges it.
 */
export class Run {
  readonly id = randomId();
  private readonly controller = new AbortController();
  private iterator: AsyncIterator<unknown> | null = null;
  /** Unacknowledged events, oldest first. */
  private buffer: BufferedEvent[] = [];
  private bufferedBytes = 0;
  private nextSeq = 1;
  private resumePump: (() => void) | null = null;
  /** Serialized `WireEnd`, once the procedure has ended. */
  endJson: string | null = null;
  /** The run failed before yielding anything; no cursor can refer to it. */
  failedAtStart = false;
  cancelled = false;
  /** The iterator finished by itself (done or threw), so there is nothing to return(). */
  private exhausted = false;

  get site(): ErrorSite {
    return this.deps.site;
  }

  /** Tracked id of the last event the client acknowledged (at first, the `lastEventId` the run started from). */
  private position: string | undefined;
  /** The procedure yielded an untracked event, so positions by id are not complete. */
  private untracked = false;

  constructor(
    readonly key: string,
    /** The cursor this run continues, if it was started to resume one. */
    readonly origin: Cursor | undefined,
    private readonly deps: RunDeps,
  ) {}

  /** Records the `lastEventId` the procedure is started from, its position before any event. */
  startFrom(lastEventId: string | undefined): void {
    this.position = lastEventId;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  async start(open: (signal: AbortSignal) => Promise<AsyncIterator<unknown>>): Promise<void> {
    try {
      this.iterator = await open(this.controller.signal);
    } catch (cause) {
      if (this.cancelled) return;
      this.failedAtStart = true;
      this.fail(cause);
      return;
    }
    if (this.cancelled) {
      this.closeIterator();
      return;
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    const iterator = this.iterator!;
    for (;;) {
      while (this.full || this.starved) {
        // Woken by an acknowledgement (this run's budget) or by any run's (the process's).
        const stopWaiting = this.full ? null : this.deps.ledger.waitForBytes(() => this.resumePump?.());
        await new Promise<void>((resolve) => (this.resumePump = resolve));
        this.resumePump = null;
        stopWaiting?.();
        if (this.cancelled) return;
      }
      let step: IteratorResult<unknown>;
      try {
        step = await iterator.next();
      } catch (cause) {
        this.exhausted = true;
        if (!this.cancelled) this.fail(cause);
        return;
      }
      if (this.cancelled) return;
      if (step.done) {
        this.exhausted = true;
        this.endJson = '{"type":"stopped"}';
        this.deps.onChange();
        return;
      }
      try {
        const id = isTrackedEnvelope(step.value) ? step.value[0] : undefined;
        if (id === undefined) this.untracked = true;
        const event = { seq: this.nextSeq, id, json: this.encode(this.nextSeq, step.value) };
        if (event.json.length > this.deps.maxEventBytes) {
          throw new TRPCError({ code: 'PAYLOAD_TOO_LARGE', message: `An event is larger than ${this.deps.maxEventBytes} bytes` });
        }
        this.buffer.push(event);
        this.bufferedBytes += bytesOf(event);
        this.deps.ledger.addBytes(bytesOf(event));
      } catch (cause) {
        this.fail(cause);
        this.closeIterator();
        return;
      }
      this.nextSeq++;
      this.deps.onChange();
    }
  }

  private encode(seq: number, value: unknown): string {
    if (isTrackedEnvelope(value)) {
      const [id, data] = value;
      return JSON.stringify({ seq, id, data: this.deps.serialize(data) });
    }
    return JSON.stringify({ seq, data: this.deps.serialize(value) });
  }

  private fail(cause: unknown): void {
    this.endJson = errorEndJson(this.deps.shapeError, cause, this.deps.site);
    this.deps.onChange();
  }

  /** Drops every event up to `seq`: the client has it. */
  ack(seq: number): void {
    let drop = 0;
    while (drop < this.buffer.length && this.buffer[drop]!.seq <= seq) drop++;
    this.drop(drop);
  }

  /**
   * Takes over a client whose cursor names another run (another instance's,
   * behind a load balancer without sticky sessions) when its `lastEventId`
   * lines up with this run: events up to it are dropped and the rest are
   * exactly what the client lacks. Saves restarting the procedure on every poll.
   */
  adopt(lastEventId: string): boolean {
    if (this.untracked || this.failedAtStart || this.position === undefined) return false;
    if (lastEventId === this.position) return true;
    const index = this.buffer.findIndex((event) => event.id === lastEventId);
    if (index < 0) return false;
    this.drop(index + 1);
    return true;
  }

  private drop(count: number): void {
    if (count > 0) {
      const last = this.buffer[count - 1]!;
      if (last.id !== undefined) this.position = last.id;
      let bytes = 0;
      for (const event of this.buffer.splice(0, count)) bytes += bytesOf(event);
      this.bufferedBytes -= bytes;
      this.deps.ledger.releaseBytes(bytes);
    }
    if (this.resumePump && !this.full) this.resumePump();
  }

  /**
   * The process's buffer budget is used up and this run holds something already. A run
   * whose client keeps up (its buffer empty) may always take one more event, so runs
   * nobody reads cannot starve the clients that do.
   */
  private get starved(): boolean {
    return this.buffer.length > 0 && !this.deps.ledger.bytesAvailable;
  }

  /** This run's own buffer budget is used up. */
  private get full(): boolean {
    return this.buffer.length >= this.deps.maxBuffered || this.bufferedBytes >= this.deps.maxBufferedBytes;
  }

  get pending(): readonly BufferedEvent[] {
    return this.buffer;
  }

  get hasNews(): boolean {
    return this.buffer.length > 0 || this.endJson !== null;
  }

  /**
   * Stops the procedure. The signal is aborted before `return()`, because
   * `return()` on a generator parked in an `await` only settles once that
   * await does; nothing waits for it.
   */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.controller.abort();
    this.resumePump?.();
    this.closeIterator();
    // Nothing can read the buffer any more.
    this.drop(this.buffer.length);
  }

  private closeIterator(): void {
    const iterator = this.iterator;
    if (!iterator || this.exhausted) return;
    try {
      iterator.return?.(undefined)?.catch?.(noop);
    } catch {
      // A synchronous throw from return() has nothing left to clean up.
    }
  }
}
