import { TRPCClientError, type Operation, type OperationResultEnvelope } from '@trpc/client';
import type { TRPCCombinedDataTransformer } from '@trpc/server';
import type { Observer } from '@trpc/server/observable';
import {
  PROTOCOL_VERSION,
  isRetryableHttpStatus,
  isRetryableRpcCode,
  parsePollResponse,
  readPollError,
  type Cursor,
  type PollRequest,
  type SubscriptionResult,
} from '@trpc-longpoll/protocol';
import { LongPollCursorError } from '../errors';
import { backoffDelay, parseRetryAfter, type RetryOptions } from './backoff';

type MaybeLazy<T> = T | (() => T | Promise<T>);
type Envelope = OperationResultEnvelope<unknown, TRPCClientError<any>>;

export interface PollerOptions {
  url: MaybeLazy<string>;
  headers?: MaybeLazy<Record<string, string>>;
  connectionParams?: MaybeLazy<Record<string, string> | null | undefined>;
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  transformer: TRPCCombinedDataTransformer;
  holdMs: number;
  watchdogMarginMs: number;
  changeDelayMs: number;
  retry: RetryOptions;
}

/** One subscription as the poller tracks it. */
interface Subscription {
  key: string;
  path: string;
  input: unknown;
  observer: Observer<Envelope, TRPCClientError<any>>;
  cursor?: Cursor;
  /** `started` was emitted and not followed by a failure since. */
  healthy: boolean;
  /** Left out of polls until this time, after its run failed with a retryable error. */
  parkedUntil: number;
  failures: number;
}

const REPOLL = Symbol('repoll');
const WATCHDOG = Symbol('watchdog');

function nextTurn(): Promise<void> {
  return new Promise((done) => (typeof setImmediate === 'function' ? setImmediate(done) : done()));
}

async function resolve<T>(value: MaybeLazy<T>): Promise<T> {
  return typeof value === 'function' ? await (value as () => T | Promise<T>)() : value;
}

function randomClientId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let text = '';
  for (const byte of bytes) text += byte.toString(16).padStart(2, '0');
  return text;
}

/**
 * Carries every subscription of one tRPC client on a single held request.
 * Subscriptions come and go; the poll is re-issued with the new set, and
 * each subscription's cursor makes the server resend what a lost response held.
 */
export class Poller {
  private readonly client = randomClientId();
  private readonly subs = new Map<string, Subscription>();
  private nextKey = 0;
  private pollNumber = 0;
  private inflight: AbortController | null = null;
  private running = false;
  private changeTimer: ReturnType<typeof setTimeout> | null = null;
  /** Bumped by every change of the set; a poll whose set is current need not be replaced. */
  private version = 0;
  private inflightVersion = -1;
  private wake: (() => void) | null = null;
  private failures = 0;
  private backoffUntil = 0;
  /** A poll reached the server, which may hold state for this client. */
  private spoken = false;

  constructor(private readonly opts: PollerOptions) {}

  add(op: Operation, observer: Observer<Envelope, TRPCClientError<any>>): () => void {
    const key = (this.nextKey++).toString(36);
    const input = op.input === undefined ? undefined : this.opts.transformer.input.serialize(op.input);
    this.subs.set(key, { key, path: op.path, input, observer, healthy: false, parkedUntil: 0, failures: 0 });
    this.changed();
    return () => {
      if (this.subs.delete(key)) this.changed();
    };
  }

  /** Re-polls soon, once for any number of changes in the window. */
  private changed(): void {
    this.version++;
    if (this.changeTimer) return;
    this.changeTimer = setTimeout(() => {
      this.changeTimer = null;
      if (this.inflight) {
        // A poll that was built after the change already carries the new set.
        if (this.inflightVersion !== this.version) this.inflight.abort(REPOLL);
      } else if (this.wake) this.wake();
      else this.start();
    }, this.opts.changeDelayMs);
  }

  private start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop().finally(() => {
      this.running = false;
      // A subscription may have arrived while the loop was winding down.
      if (this.subs.size > 0) this.start();
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((done) => {
      const timer = setTimeout(finish, ms);
      function finish() {
        clearTimeout(timer);
        done();
      }
      this.wake = () => {
        this.wake = null;
        finish();
      };
    }).finally(() => {
      this.wake = null;
    });
  }

  private async loop(): Promise<void> {
    for (;;) {
      if (this.subs.size === 0) {
        if (this.spoken) await this.farewell();
        return;
      }
      const now = Date.now();
      if (this.backoffUntil > now) {
        await this.sleep(this.backoffUntil - now);
        continue;
      }
      const version = this.version;
      const active = [...this.subs.values()].filter((sub) => sub.parkedUntil <= now);
      if (active.length === 0) {
        const next = Math.min(...[...this.subs.values()].map((sub) => sub.parkedUntil));
        await this.sleep(next - now);
        continue;
      }
      this.inflightVersion = version;
      await this.poll(active);
      // Node's fetch (undici) puts a connection back in its pool only after this turn: polling at
      // once would open a second connection per client, which the server would keep alive too.
      await nextTurn();
    }
  }

  private body(subs: Subscription[], connectionParams: Record<string, string> | null | undefined): PollRequest {
    return {
      v: PROTOCOL_VERSION,
      client: this.client,
      poll: ++this.pollNumber,
      // After a failure, the first poll that gets through should say so at once (`started`), not after a full hold.
      hold: subs.some((sub) => !sub.healthy && sub.cursor) ? 0 : this.opts.holdMs,
      connectionParams: connectionParams ?? null,
      subscriptions: subs.map((sub) => {
        const entry: PollRequest['subscriptions'][number] = { key: sub.key, path: sub.path };
        if (sub.input !== undefined) entry.input = sub.input;
        if (sub.cursor) entry.cursor = sub.cursor;
        return entry;
      }),
    };
  }

  /** `url`, `headers` and `connectionParams` are evaluated for every poll, so tokens can rotate. */
  private async send(subs: Subscription[], signal: AbortSignal): Promise<Response> {
    const [url, headers, connectionParams] = await Promise.all([
      resolve(this.opts.url),
      resolve(this.opts.headers ?? {}),
      resolve(this.opts.connectionParams),
    ]);
    const fetchFn = this.opts.fetch ?? globalThis.fetch;
    return fetchFn(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify(this.body(subs, connectionParams)),
      signal,
    });
  }

  private async poll(active: Subscription[]): Promise<void> {
    const controller = new AbortController();
    this.inflight = controller;
    // The server holds at most hold + hold/16; past that plus a margin the request is wedged.
    const watchdogMs = this.opts.holdMs + this.opts.holdMs / 16 + this.opts.watchdogMarginMs;
    const watchdog = setTimeout(() => controller.abort(WATCHDOG), watchdogMs);
    let response: Response;
    let text: string;
    try {
      this.spoken = true;
      response = await this.send(active, controller.signal);
      text = await response.text();
    } catch (cause) {
      const reason: unknown = controller.signal.reason;
      if (controller.signal.aborted && reason === REPOLL) return;
      const error =
        controller.signal.aborted && reason === WATCHDOG
          ? new TRPCClientError(`The poll got no answer within ${Math.round(watchdogMs)} ms`)
          : TRPCClientError.from(cause instanceof Error ? cause : new Error(String(cause)));
      this.transient(active, error);
      return;
    } finally {
      clearTimeout(watchdog);
      if (this.inflight === controller) this.inflight = null;
    }
    this.handleResponse(active, response, text);
  }

  private handleResponse(active: Subscription[], response: Response, text: string): void {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const meta = { response };
      const polled = readPollError(json);
      const shape = polled ? this.deserializeShape(polled.error) : null;
      const error = shape
        ? TRPCClientError.from({ error: shape as never }, { meta })
        : new TRPCClientError(`The poll failed with HTTP ${response.status}`, { meta });
      if (isRetryableHttpStatus(response.status) || (shape && isRetryableRpcCode(shape.code))) {
        this.transient(active, error, parseRetryAfter(response.headers.get('retry-after')));
      } else {
        for (const sub of active) this.fail(sub, error);
      }
      return;
    }
    let results: Record<string, SubscriptionResult>;
    try {
      results = parsePollResponse(json).results;
    } catch (cause) {
      this.transient(active, new TRPCClientError(`The poll answer is not a trpc-longpoll response: ${(cause as Error).message}`));
      return;
    }
    this.failures = 0;
    // A draining server asks for a pause before the next poll; it is no failure, so nothing turns `connecting`.
    const pause = parseRetryAfter(response.headers.get('retry-after'));
    if (pause !== undefined) this.backoffUntil = Date.now() + pause;
    for (const sub of active) {
      if (this.subs.get(sub.key) !== sub) continue;
      const result = results[sub.key];
      if (result) this.apply(sub, result);
      else if (!sub.healthy && sub.cursor) this.started(sub);
    }
  }

  private deserializeShape(error: unknown): { message: string; code: number; data?: unknown } | null {
    try {
      const shape = this.opts.transformer.output.deserialize(error) as { message?: unknown; code?: unknown };
      if (shape && typeof shape.message === 'string' && typeof shape.code === 'number') return shape as never;
    } catch {
      // Fall through: an undecodable shape is reported as a plain HTTP failure.
    }
    return null;
  }

  private emit(sub: Subscription, result: Envelope['result']): boolean {
    try {
      sub.observer.next({ result });
      return true;
    } catch (cause) {
      // A throwing consumer ends its own subscription, not the others'.
      this.fail(sub, TRPCClientError.from(cause instanceof Error ? cause : new Error(String(cause))));
      return false;
    }
  }

  private started(sub: Subscription): void {
    sub.healthy = true;
    sub.failures = 0;
    if (this.emit(sub, { type: 'started' })) this.emit(sub, { type: 'state', state: 'pending', error: null });
  }

  private apply(sub: Subscription, result: SubscriptionResult): void {
    if (result.run !== undefined) {
      if (sub.cursor?.run !== result.run) {
        // A new run numbers its events from 1; the tracked id carries over.
        const lastEventId = sub.cursor?.lastEventId;
        sub.cursor = { run: result.run, seq: 0 };
        if (lastEventId !== undefined) sub.cursor.lastEventId = lastEventId;
      }
      if (!sub.healthy) this.started(sub);
    }
    for (const event of result.events ?? []) {
      if (this.subs.get(sub.key) !== sub) return;
      const cursor = sub.cursor;
      // Already delivered: a resend after a lost answer.
      if (!cursor || event.seq <= cursor.seq) continue;
      cursor.seq = event.seq;
      let data: unknown;
      try {
        data = this.opts.transformer.output.deserialize(event.data);
      } catch (cause) {
        this.fail(sub, new TRPCClientError('An event could not be deserialized', { cause: cause as Error }));
        return;
      }
      if (event.id !== undefined) {
        cursor.lastEventId = event.id;
        if (!this.emit(sub, { id: event.id, data: { id: event.id, data } })) return;
      } else if (!this.emit(sub, { data })) return;
    }
    if (!result.end || this.subs.get(sub.key) !== sub) return;
    const end = result.end;
    if (end.type === 'stopped') {
      this.remove(sub);
      this.emit(sub, { type: 'stopped' });
      this.emit(sub, { type: 'state', state: 'idle', error: null });
      sub.observer.complete();
      return;
    }
    const shape = this.deserializeShape(end.error) ?? { message: 'The subscription failed', code: -32603 };
    if (end.reason) {
      this.fail(sub, new LongPollCursorError(shape, end.reason));
    } else if (isRetryableRpcCode(shape.code)) {
      // The run is over; ask for a new one after a pause, keeping this one's position.
      sub.healthy = false;
      if (sub.cursor) sub.cursor.restart = true;
      sub.parkedUntil = Date.now() + backoffDelay(++sub.failures, this.opts.retry);
      setTimeout(() => this.changed(), sub.parkedUntil - Date.now());
      this.emit(sub, { type: 'state', state: 'connecting', error: TRPCClientError.from({ error: shape as never }) });
    } else {
      this.fail(sub, TRPCClientError.from({ error: shape as never }));
    }
  }

  /** A poll-wide failure that is worth retrying: every subscription shows `connecting`. */
  private transient(active: Subscription[], error: TRPCClientError<any>, retryAfterMs?: number): void {
    this.failures++;
    this.backoffUntil = Date.now() + backoffDelay(this.failures, this.opts.retry, retryAfterMs);
    for (const sub of active) {
      if (this.subs.get(sub.key) !== sub) continue;
      sub.healthy = false;
      this.emit(sub, { type: 'state', state: 'connecting', error });
    }
  }

  private remove(sub: Subscription): void {
    if (this.subs.get(sub.key) === sub) {
      this.subs.delete(sub.key);
      this.changed();
    }
  }

  private fail(sub: Subscription, error: TRPCClientError<any>): void {
    if (this.subs.get(sub.key) !== sub) return;
    this.remove(sub);
    sub.observer.error(error);
  }

  /** Tells the server the client has no subscriptions left, so it stops their procedures now rather than at expiry. */
  private async farewell(): Promise<void> {
    this.spoken = false;
    try {
      const response = await this.send([], AbortSignal.timeout(this.opts.watchdogMarginMs));
      await response.text();
    } catch {
      // Best effort: the server's idle expiry covers a farewell that got lost.
    }
  }
}
