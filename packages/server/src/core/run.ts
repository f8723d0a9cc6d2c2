import { isTrackedEnvelope } from '@trpc/server';
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

export interface RunDeps {
  serialize: (value: unknown) => unknown;
  shapeError: ErrorShaper;
  site: ErrorSite;
  /** Most events kept unacknowledged; beyond it the iterator is not pulled (backpressure). */
  maxBuffered: number;
  /** Something a poll could answer with has appeared. */
  onChange: () => void;
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
      if (this.buffer.length >= this.deps.maxBuffered) {
        await new Promise<void>((resolve) => (this.resumePump = resolve));
        this.resumePump = null;
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
        this.buffer.push({ seq: this.nextSeq, id, json: this.encode(this.nextSeq, step.value) });
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
      this.buffer.splice(0, count);
    }
    if (this.resumePump && this.buffer.length < this.deps.maxBuffered) this.resumePump();
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
