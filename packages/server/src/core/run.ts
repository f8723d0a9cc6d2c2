import { TRPCError, isTrackedEnvelope } from '@trpc/server';
import { randomId, waitUntil, type Cursor, type CursorErrorReason } from '@trpc-longpoll/protocol';
import { isBookmark, markBookmarks, type BookmarkHooks } from '../log/bookmarks';
import type { InputOutcome } from './input';
import type { JsonOf } from './serializeOnce';
import { errorEndJson, lastEventIdOf, withLastEventId, type ErrorShaper, type ErrorSite, type ProcedureCall } from './procedures';
import type { CachedRun } from './reconcile';

/** An event as it will go on the wire, serialized once however often it is resent. */
export interface BufferedEvent {
  seq: number;
  /** The `tracked()` id, if any. */
  id: string | undefined;
  json: string;
  /** A position-only event (§4): it moves the client's cursor, is never delivered, and wakes no held poll. */
  bookmark?: true;
}

/**
 * Longest a new run's announcement waits for the start position its source
 * promised (`claimBookmarks`): a log answers in a round trip; a source that
 * never delivers must not keep `started` from the client for long.
 */
const POSITION_WAIT_MS = 2_000;

/** The process-wide count of buffered bytes that every run adds to and takes from. */
export interface ByteLedger {
  readonly bytesAvailable: boolean;
  addBytes(bytes: number): void;
  releaseBytes(bytes: number): void;
  waitForBytes(resume: () => void): () => void;
}

/**
 * What every run of a core shares. Made once per core: a closure made per run
 * would keep the scope it was made in (and the poll's input) alive.
 */
export interface RunDeps {
  /** Calls the procedure. */
  open: (call: ProcedureCall) => Promise<AsyncIterator<unknown>>;
  /** A yielded value's JSON (output transformer applied), shared by the runs that yield it in one turn. */
  jsonOf: JsonOf;
  shapeError: ErrorShaper;
  /** Hears the cursor error reason of a run's error end (for the operator's counters). */
  onCursorError?: (reason: CursorErrorReason) => void;
  /** Most events kept unacknowledged; beyond it the iterator is not pulled (backpressure). */
  maxBuffered: number;
  /** Most bytes kept unacknowledged (`bytesOf` each event); at or beyond it the iterator is not pulled. */
  maxBufferedBytes: number;
  /** Largest one event's JSON may be; a larger one ends the run with `PAYLOAD_TOO_LARGE`. */
  maxEventBytes: number;
  ledger: ByteLedger;
}

/** Everything one run is made of, given when it is created, as tRPC's `sseStreamProducer` takes its options. */
export interface RunInit {
  path: string;
  /** The client's input, or the error that refused it: then the run fails at start. */
  input: InputOutcome;
  /** Where the procedure starts from, merged into its input as tRPC merges `Last-Event-ID`. */
  lastEventId: string | undefined;
  /** The cursor this run continues, if it was started to resume one. */
  origin: Cursor | undefined;
  ctx: unknown;
  /** The request of the poll that starts it, for `onError`; later polls take its place (`polledBy`). */
  req: unknown;
  /** Something a poll could answer with has appeared. */
  onChange: () => void;
  /** The client takes bookmarks (revision 1): the procedure's signal says so to its event log. */
  bookmarks: boolean;
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
export class Run implements CachedRun {
  readonly id = randomId();
  readonly origin: Cursor | undefined;
  private readonly controller = new AbortController();
  /** Where the run's errors are reported from; its input goes once the procedure has validated it. */
  private readonly site: ErrorSite & { path: string };
  private readonly onChange: () => void;
  /** The client takes bookmarks; without it, one a procedure yields anyway is dropped. */
  private readonly takesBookmarks: boolean;
  /** The input could not be read: the run fails with this instead of calling the procedure. */
  private readonly refusal: { error: unknown } | null;
  private iterator: AsyncIterator<unknown> | null = null;
  /** Unacknowledged events, oldest first. */
  private buffer: BufferedEvent[] = [];
  private bufferedBytes = 0;
  private nextSeq = 1;
  private resumePump: (() => void) | null = null;
  private end: string | null = null;
  private failedEarly = false;
  private cancelled = false;
  /** The iterator finished by itself (done or threw), so there is nothing to return(). */
  private exhausted = false;
  /** Tracked id of the last event the client acknowledged (at first, the `lastEventId` the run started from). */
  private position: string | undefined;
  /** The procedure yielded an untracked event, so positions by id are not complete. */
  private untracked = false;
  /** Tracked id of the newest event buffered or acknowledged: a bookmark at it says nothing new. */
  private newestId: string | undefined;
  /** Bookmarks among the buffered events: they are answered, but wake no held poll. */
  private bookmarksBuffered = 0;
  /** The procedure's source promised a start position (a bookmark) and it has not come yet. */
  private awaitingPosition = false;
  private positionArrived: (() => void) | null = null;

  constructor(
    init: RunInit,
    private readonly deps: RunDeps,
  ) {
    this.origin = init.origin;
    this.onChange = init.onChange;
    this.takesBookmarks = init.bookmarks;
    this.refusal = 'error' in init.input ? init.input : null;
    const input = 'value' in init.input ? withLastEventId(init.input.value, init.lastEventId) : undefined;
    this.position = lastEventIdOf(input);
    this.newestId = this.position;
    this.site = { path: init.path, input, ctx: init.ctx, req: init.req };
    if (init.bookmarks) markBookmarks(this.controller.signal, this.bookmarkHooks());
  }

  /** Made in a method of its own, so the hooks keep only the run alive, not the constructor's input. */
  private bookmarkHooks(): BookmarkHooks {
    return {
      claim: () => {
        this.awaitingPosition = true;
      },
      settle: () => this.positionSettled(),
    };
  }

  private positionSettled(): void {
    this.awaitingPosition = false;
    this.positionArrived?.();
  }

  /** The procedure's path. */
  get path(): string {
    return this.site.path;
  }

  /** Serialized `WireEnd`, once the procedure has ended. */
  get endJson(): string | null {
    return this.end;
  }

  get ended(): boolean {
    return this.end !== null;
  }

  /** The run failed before its iterator existed; no cursor can refer to it. */
  get failedAtStart(): boolean {
    return this.failedEarly;
  }

  /** A poll of the run's client arrived: `onError` reports the run's later errors with its request, and the older one can go. */
  polledBy(req: unknown): void {
    this.site.req = req;
  }

  /** Calls the procedure; resolves once its iterator exists or it has failed. */
  async start(): Promise<void> {
    try {
      this.iterator = await this.open();
    } catch (cause) {
      if (this.cancelled) return;
      this.failedEarly = true;
      this.fail(cause);
      return;
    } finally {
      // The procedure has validated its input and keeps what it needs: the raw value, whatever its size, goes.
      this.site.input = undefined;
    }
    if (this.cancelled) {
      this.closeIterator();
      return;
    }
    // The first pull runs the procedure up to its first await: a source that claims bookmarks does so there.
    void this.pump();
    if (this.awaitingPosition) {
      await waitUntil({
        ms: POSITION_WAIT_MS,
        register: (arrived) => {
          this.positionArrived = arrived;
          return () => {
            this.positionArrived = null;
          };
        },
      });
    }
  }

  private async open(): Promise<AsyncIterator<unknown>> {
    if (this.refusal) throw this.refusal.error;
    const { path, input, ctx } = this.site;
    return this.deps.open({ path, input, ctx, signal: this.controller.signal });
  }

  private async pump(): Promise<void> {
    const iterator = this.iterator!;
    for (;;) {
      while (this.full || this.starved) {
        await waitUntil({ register: (wake) => this.park(wake) });
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
        this.end = '{"type":"stopped"}';
        this.positionSettled();
        this.onChange();
        return;
      }
      if (isBookmark(step.value)) {
        this.bookmark((step.value as [string])[0]);
        continue;
      }
      try {
        const id = isTrackedEnvelope(step.value) ? step.value[0] : undefined;
        if (id === undefined) this.untracked = true;
        const event = { seq: this.nextSeq, id, json: this.encode(this.nextSeq, step.value) };
        if (event.json.length > this.deps.maxEventBytes) {
          throw new TRPCError({ code: 'PAYLOAD_TOO_LARGE', message: `An event is larger than ${this.deps.maxEventBytes} bytes` });
        }
        this.push(event);
      } catch (cause) {
        this.fail(cause);
        this.closeIterator();
        return;
      }
      this.onChange();
    }
  }

  private push(event: BufferedEvent): void {
    this.buffer.push(event);
    this.bufferedBytes += bytesOf(event);
    this.deps.ledger.addBytes(bytesOf(event));
    this.nextSeq++;
    if (event.id !== undefined) this.newestId = event.id;
    if (event.bookmark) this.bookmarksBuffered++;
    this.positionSettled();
  }

  /**
   * A position-only event. Buffered only for a client that takes bookmarks, and
   * only when it moves the position (a log's periodic bookmark usually repeats
   * the last event's id); it wakes no held poll: it travels with the next answer.
   */
  private bookmark(id: unknown): void {
    if (typeof id === 'string' && this.takesBookmarks && id !== this.newestId) {
      this.push({ seq: this.nextSeq, id, json: JSON.stringify({ seq: this.nextSeq, id, bookmark: true }), bookmark: true });
    }
    this.positionSettled();
  }

  /** Stops the pump until an acknowledgement (this run's budget) or any run's (the process's) makes room. */
  private park(wake: () => void): () => void {
    this.resumePump = wake;
    const stopWaiting = this.full ? null : this.deps.ledger.waitForBytes(wake);
    return () => {
      this.resumePump = null;
      stopWaiting?.();
    };
  }

  private encode(seq: number, value: unknown): string {
    // Only `seq` differs between the runs that share a value: the rest is concatenated, not serialized again.
    const [head, data] = isTrackedEnvelope(value) ? [`{"seq":${seq},"id":${JSON.stringify(value[0])}`, value[1]] : [`{"seq":${seq}`, value];
    const json = this.deps.jsonOf(data);
    return json === undefined ? `${head}}` : `${head},"data":${json}}`;
  }

  private fail(cause: unknown): void {
    this.end = errorEndJson(this.deps.shapeError, cause, this.site, this.deps.onCursorError);
    this.positionSettled();
    this.onChange();
  }

  /** Drops every event up to `seq`: the client has it. */
  ack(seq: number): void {
    let drop = 0;
    while (drop < this.buffer.length && this.buffer[drop]!.seq <= seq) drop++;
    this.drop(drop);
  }

  /**
   * Whether a client whose cursor names another run (another instance's,
   * behind a load balancer without sticky sessions) can take this one over:
   * its `lastEventId` is this run's position or one of its buffered events,
   * so the events after it are exactly what the client lacks.
   */
  linesUpWith(lastEventId: string): boolean {
    if (this.untracked || this.position === undefined) return false;
    return lastEventId === this.position || this.buffer.some((event) => event.id === lastEventId);
  }

  /** Takes over a client that `linesUpWith` this run: drops the events it has. Saves restarting the procedure on every poll. */
  adopt(lastEventId: string): void {
    if (lastEventId === this.position) return;
    const index = this.buffer.findIndex((event) => event.id === lastEventId);
    if (index >= 0) this.drop(index + 1);
  }

  private drop(count: number): void {
    if (count > 0) {
      const last = this.buffer[count - 1]!;
      if (last.id !== undefined) this.position = last.id;
      let bytes = 0;
      for (const event of this.buffer.splice(0, count)) {
        bytes += bytesOf(event);
        if (event.bookmark) this.bookmarksBuffered--;
      }
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

  /** Events or an end to answer with at once; bookmarks alone wait for the next answer. */
  get hasNews(): boolean {
    return this.buffer.length > this.bookmarksBuffered || this.end !== null;
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
    this.positionSettled();
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
