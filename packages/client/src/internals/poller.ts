import { TRPCClientError } from '@trpc/client';
import {
  PROTOCOL_MINOR,
  PROTOCOL_VERSION,
  isRetryableHttpStatus,
  isRetryableRpcCode,
  parsePollResponse,
  randomId,
  readPollError,
  timeoutSignal,
  waitUntil,
  type PollRequest,
  type PollResponse,
  type SubscriptionResult,
} from '@trpc-longpoll/protocol';
import { affinityUrl } from './affinity';
import { backoffDelay, parseRetryAfter, staleStep } from './backoff';
import { deserializeShape, pollError, type WireFailure } from './failures';
import { evaluate, type PollerOptions } from './options';
import { reportOutcome, type PollOutcomeBase, type PollOutcomeInfo } from './outcomes';
import { judgeResult, type SubscriptionState } from './verdict';

/** One subscription as the poll loop carries it; its owner (a subscription of this tab or of another) gets its outcomes. */
export interface PollEntry extends SubscriptionState {
  key: string;
  path: string;
  /** Already serialized with the input transformer. */
  input?: unknown;
  /** Left out of polls until this time, after its run failed with a retryable error. */
  parkedUntil: number;
  failures: number;
}

/** What a hub gives the poll loop of a subscription; the loop keeps the rest. */
export type NewEntry = Pick<PollEntry, 'key' | 'path' | 'input' | 'cursor'> & { healthy?: boolean };

/** What became of one poll, for the entries it carried that are still there. */
export type PollOutcome =
  | { kind: 'answer'; results: Record<string, SubscriptionResult> }
  | { kind: 'transient'; error: TRPCClientError<any>; wire: WireFailure }
  | { kind: 'fatal'; error: TRPCClientError<any>; wire: WireFailure };

export interface PollLoopOptions extends PollerOptions {
  /** Hands an outcome to the owners of `entries`. */
  deliver: (outcome: PollOutcome, entries: PollEntry[]) => void;
  /**
   * The client id; random by default. Tabs that share a poll share it, so the server's session outlives a leader.
   * Replaced by a fresh random one when the server keeps taking the polls for stale (see `staleStep`).
   */
  client?: string;
  /** The next poll number after `last`; `last + 1` by default. */
  nextPoll?: (last: number) => number;
  /** Told each poll number as it is used, with the client id it goes out under. */
  onPoll?: (poll: number, client: string) => void;
}

const SUPERSEDED = Symbol('superseded');
/**
 * A poll replaced by a newer one is answered by the server when the newer arrives; one that is
 * still out after this long (an older server, another instance without the cluster option) is
 * aborted, giving up its connection.
 */
const SUPERSEDED_GRACE_MS = 2_000;
const WATCHDOG = Symbol('watchdog');
const STOP = Symbol('stop');

function nextTurn(): Promise<void> {
  return new Promise((done) => (typeof setImmediate === 'function' ? setImmediate(done) : done()));
}

/**
 * Carries a set of subscriptions on a single held request.
 * Entries come and go; the poll is re-issued with the new set, and each
 * entry's cursor makes the server resend what a lost response held.
 */
export class Poller {
  private clientId: string;
  private readonly entries = new Map<string, PollEntry>();
  private pollNumber: number;
  private inflight: AbortController | null = null;
  /** Every poll still out: the current one, and replaced ones whose answers have not come yet. */
  private readonly outstanding = new Set<AbortController>();
  /** Polls a newer one replaced: only results they carry count, not their failures or empty answers. */
  private readonly replaced = new WeakSet<AbortController>();
  /** Ends the loop's wait on the poll in flight, so a newer set goes out without aborting it. */
  private supersede: (() => void) | null = null;
  /** The entries the poll in flight carries. */
  private carrying: ReadonlySet<PollEntry> = new Set();
  private running = false;
  private stopped = false;
  private changeTimer: ReturnType<typeof setTimeout> | null = null;
  /** Bumped by every change of the set; a poll whose set is current need not be replaced. */
  private version = 0;
  private inflightVersion = -1;
  private wake: (() => void) | null = null;
  private failures = 0;
  /** Stale answers in a row; apart from `failures`, since a stale answer is neither a failure nor a good answer. */
  private staleAnswers = 0;
  private backoffUntil = 0;
  /** A poll reached the server, which may hold state for this client. */
  private spoken = false;
  /** The instance that answered last (`via`), told to the next one as `prev`. */
  private via: string | undefined;
  /** When the poll in flight went out, for `onPollOutcome`'s `durationMs`. */
  private sentAt = 0;

  constructor(
    private readonly opts: PollLoopOptions,
    lastPoll = 0,
  ) {
    this.clientId = opts.client ?? randomId();
    this.pollNumber = lastPoll;
  }

  get client(): string {
    return this.clientId;
  }

  add(entry: NewEntry): void {
    if (this.stopped) return;
    this.entries.set(entry.key, {
      key: entry.key,
      path: entry.path,
      input: entry.input,
      ...(entry.cursor ? { cursor: entry.cursor } : {}),
      healthy: entry.healthy ?? false,
      parkedUntil: 0,
      failures: 0,
    });
    this.changed();
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  remove(key: string): void {
    if (this.entries.delete(key)) this.changed();
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  /** Ends the loop without a farewell: another tab takes the poll over, with the same client id. */
  stop(): void {
    this.stopped = true;
    if (this.changeTimer) clearTimeout(this.changeTimer);
    this.changeTimer = null;
    for (const controller of this.outstanding) controller.abort(STOP);
    this.wake?.();
  }

  /** Re-polls soon, once for any number of changes in the window. */
  private changed(): void {
    this.version++;
    if (this.changeTimer || this.stopped) return;
    this.changeTimer = setTimeout(() => {
      this.changeTimer = null;
      if (this.inflight) {
        // A poll that was built after the change already carries the new set. An older one is not aborted: that would
        // close its connection (a new TCP and TLS handshake per change); the server answers it when the new one arrives.
        if (this.inflightVersion !== this.version) this.supersede?.();
      } else if (this.wake) this.wake();
      else this.start();
    }, this.opts.changeDelayMs);
  }

  private start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    void this.loop().finally(() => {
      this.running = false;
      // An entry may have arrived while the loop was winding down.
      if (this.entries.size > 0) this.start();
    });
  }

  /** Lends the loop's pauses to `changed()` and `stop()`, which end them early. */
  private readonly wakeable = (wake: () => void) => {
    this.wake = wake;
    return () => {
      this.wake = null;
    };
  };

  private async loop(): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      if (this.entries.size === 0) {
        if (this.spoken) await this.farewell();
        return;
      }
      const now = Date.now();
      if (this.backoffUntil > now) {
        await waitUntil({ ms: this.backoffUntil - now, register: this.wakeable });
        continue;
      }
      const version = this.version;
      const active = [...this.entries.values()].filter((entry) => entry.parkedUntil <= now);
      if (active.length === 0) {
        const next = Math.min(...[...this.entries.values()].map((entry) => entry.parkedUntil));
        await waitUntil({ ms: next - now, register: this.wakeable });
        continue;
      }
      this.inflightVersion = version;
      await this.pollUntilSuperseded(active);
      // Node's fetch (undici) puts a connection back in its pool only after this turn: polling at
      // once would open a second connection per client, which the server would keep alive too.
      await nextTurn();
    }
  }

  private body(entries: PollEntry[], connectionParams: Record<string, string> | null | undefined): PollRequest {
    const poll = this.opts.nextPoll ? this.opts.nextPoll(this.pollNumber) : this.pollNumber + 1;
    this.pollNumber = poll;
    this.opts.onPoll?.(poll, this.clientId);
    const body: PollRequest = {
      v: PROTOCOL_VERSION,
      minor: PROTOCOL_MINOR,
      client: this.clientId,
      poll,
      // After a failure, the first poll that gets through should say so at once (`started`), not after a full hold.
      hold: entries.some((entry) => !entry.healthy && entry.cursor) ? 0 : this.opts.holdMs,
      connectionParams: connectionParams ?? null,
      subscriptions: entries.map((entry) => {
        const sub: PollRequest['subscriptions'][number] = { key: entry.key, path: entry.path };
        if (entry.input !== undefined) sub.input = entry.input;
        if (entry.cursor) sub.cursor = entry.cursor;
        return sub;
      }),
    };
    if (this.via !== undefined) body.prev = this.via;
    return body;
  }

  /** `url`, `headers` and `connectionParams` are evaluated for every poll, so tokens can rotate. */
  private async send(entries: PollEntry[], signal: AbortSignal): Promise<Response> {
    const [url, headers, connectionParams] = await Promise.all([
      evaluate(this.opts.url),
      evaluate(this.opts.headers ?? {}),
      evaluate(this.opts.connectionParams),
    ]);
    const fetchFn = this.opts.fetch ?? globalThis.fetch;
    return fetchFn(this.opts.affinity ? affinityUrl(url, this.clientId) : url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify(this.body(entries, connectionParams)),
      signal,
    });
  }

  /** Waits for the poll's answer, or until a change replaces it; a replaced poll's answer is still taken when it comes. */
  private async pollUntilSuperseded(active: PollEntry[]): Promise<void> {
    const controller = new AbortController();
    const replaced = waitUntil({
      register: (wake) => {
        this.supersede = wake;
        return () => {
          this.supersede = null;
        };
      },
    });
    const polling = this.poll(active, controller);
    await Promise.race([polling, replaced]);
    this.supersede?.();
    if (this.outstanding.has(controller)) {
      this.replaced.add(controller);
      const giveUp = setTimeout(() => controller.abort(SUPERSEDED), SUPERSEDED_GRACE_MS);
      void polling.finally(() => clearTimeout(giveUp));
    }
  }

  private async poll(active: PollEntry[], controller: AbortController): Promise<void> {
    this.inflight = controller;
    this.outstanding.add(controller);
    this.carrying = new Set(active);
    // The server holds at most hold + hold/16; past that plus a margin the request is wedged.
    const watchdogMs = this.opts.holdMs + this.opts.holdMs / 16 + this.opts.watchdogMarginMs;
    const watchdog = setTimeout(() => controller.abort(WATCHDOG), watchdogMs);
    this.sentAt = Date.now();
    let response: Response;
    let text: string;
    try {
      this.spoken = true;
      response = await this.send(active, controller.signal);
      text = await response.text();
    } catch (cause) {
      const reason: unknown = controller.signal.reason;
      // A replaced poll's failure says nothing about the entries: the newer poll carries them.
      if ((controller.signal.aborted && reason === STOP) || this.replaced.has(controller)) return;
      const watchdogFired = controller.signal.aborted && reason === WATCHDOG;
      const error = watchdogFired
        ? new TRPCClientError(`The poll got no answer within ${Math.round(watchdogMs)} ms`)
        : TRPCClientError.from(cause instanceof Error ? cause : new Error(String(cause)));
      this.transient(active, error);
      this.report({ ...this.outcomeBase(active), type: 'failed', reason: watchdogFired ? 'watchdog' : 'network', error, backoffMs: this.backoffMs() });
      return;
    } finally {
      clearTimeout(watchdog);
      this.outstanding.delete(controller);
      if (this.inflight === controller) {
        this.inflight = null;
        this.carrying = new Set();
      }
    }
    if (this.stopped) return;
    this.handleResponse(active, response, text, controller);
  }

  private handleResponse(active: PollEntry[], response: Response, text: string, controller: AbortController): void {
    if (this.replaced.has(controller)) {
      this.lateAnswer(active, response, text);
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const polled = readPollError(json);
      const error = pollError(this.opts.transformer, response.status, polled?.error, { response });
      const shape = polled ? deserializeShape(this.opts.transformer, polled.error) : null;
      const retryable = isRetryableHttpStatus(response.status) || (shape !== null && isRetryableRpcCode(shape.code));
      if (retryable) {
        this.transient(active, error, parseRetryAfter(response.headers.get('retry-after')));
      } else {
        this.fatal(active, error, { kind: 'fatal', status: response.status, ...(polled ? { error: polled.error } : {}) });
      }
      const backoffMs = retryable ? this.backoffMs() : null;
      this.report({ ...this.outcomeBase(active), type: 'failed', reason: 'http', status: response.status, error, backoffMs });
      return;
    }
    let answer: PollResponse;
    try {
      answer = parsePollResponse(json);
    } catch (cause) {
      const error = new TRPCClientError(`The poll answer is not a trpc-longpoll response: ${(cause as Error).message}`);
      this.transient(active, error);
      this.report({ ...this.outcomeBase(active), type: 'failed', reason: 'invalid-answer', error, backoffMs: this.backoffMs() });
      return;
    }
    this.via = answer.via;
    if (answer.stale) {
      const base = this.outcomeBase(active);
      this.stale(active);
      this.report({ ...base, type: 'stale', inARow: this.staleAnswers, backoffMs: this.backoffMs(), newClient: base.client !== this.clientId });
      return;
    }
    const { results } = answer;
    this.failures = 0;
    this.staleAnswers = 0;
    // A draining server asks for a pause before the next poll; it is no failure, so nothing turns `connecting`.
    const pause = parseRetryAfter(response.headers.get('retry-after'));
    if (pause !== undefined) this.backoffUntil = Date.now() + pause;
    const carried = this.current(active);
    for (const entry of carried) this.track(entry, results[entry.key]);
    this.opts.deliver({ kind: 'answer', results }, carried);
    if (this.opts.onPollOutcome) {
      const events = Object.values(results).reduce((sum, result) => sum + (result.events?.length ?? 0), 0);
      this.report({ ...this.outcomeBase(active), type: 'answered', events, results: Object.keys(results).length, pauseMs: pause ?? 0 });
    }
  }

  private outcomeBase(active: PollEntry[]): PollOutcomeBase {
    return { poll: this.pollNumber, client: this.clientId, subscriptions: active.length, durationMs: Date.now() - this.sentAt };
  }

  private readonly report = (outcome: PollOutcomeInfo) => reportOutcome(this.opts.onPollOutcome, outcome);

  private backoffMs(): number {
    return Math.max(0, this.backoffUntil - Date.now());
  }

  /**
   * The answer to a poll a newer one replaced. The server usually answers it empty when the newer
   * arrives; if news beat the newer poll there, the events are delivered now (and deduplicated
   * when the newer answer repeats them). Nothing else in it — failures, `via`, `stale` — is newer
   * than what the newer poll will say.
   */
  private lateAnswer(active: PollEntry[], response: Response, text: string): void {
    if (!response.ok) return;
    let answer: PollResponse;
    try {
      answer = parsePollResponse(JSON.parse(text));
    } catch {
      return;
    }
    if (answer.stale || Object.keys(answer.results).length === 0) return;
    const carried = this.current(active).filter((entry) => answer.results[entry.key] !== undefined);
    for (const entry of carried) this.track(entry, answer.results[entry.key]);
    this.opts.deliver({ kind: 'answer', results: answer.results }, carried);
  }

  /** The entries of a poll that are still in the set (not removed while it was out). */
  private current(active: PollEntry[]): PollEntry[] {
    return active.filter((entry) => this.entries.get(entry.key) === entry);
  }

  /** Moves an entry along with its result by the rules its subscription follows too, wherever that subscription lives. */
  private track(entry: PollEntry, result: SubscriptionResult | undefined): void {
    const judged = judgeResult(entry, result, this.opts.transformer);
    entry.cursor = judged.cursor;
    entry.healthy = judged.healthy;
    if (judged.started) entry.failures = 0;
    if (judged.end?.kind === 'retry') this.park(entry, judged.end.retryAfterMs);
    else if (judged.end) this.remove(entry.key);
  }

  /** Leaves a retrying entry out of polls for a backoff; a server short of capacity says how long at least. */
  private park(entry: PollEntry, retryAfterMs: number | undefined): void {
    entry.parkedUntil = Date.now() + backoffDelay(++entry.failures, this.opts.retry, retryAfterMs);
    setTimeout(() => {
      // A poll held for the other entries must be replaced to carry it again; one that woke for it already carries it,
      // and replacing that would send a server short of capacity a second request for nothing.
      if (!this.carrying.has(entry)) this.changed();
    }, entry.parkedUntil - Date.now());
  }

  /** A poll-wide failure that is worth retrying: every subscription shows `connecting`. */
  private transient(active: PollEntry[], error: TRPCClientError<any>, retryAfterMs?: number): void {
    this.failures++;
    this.backoffUntil = Date.now() + backoffDelay(this.failures, this.opts.retry, retryAfterMs);
    this.connecting(active, error);
  }

  private connecting(active: PollEntry[], error: TRPCClientError<any>): void {
    const carried = this.current(active);
    for (const entry of carried) entry.healthy = false;
    this.opts.deliver({ kind: 'transient', error, wire: { kind: 'transient', message: error.message } }, carried);
  }

  /**
   * The server has seen a poll of this client id with a number at least as high and ignored this one.
   * The answer says nothing about the subscriptions, so none of them counts as answered.
   */
  private stale(active: PollEntry[]): void {
    const step = staleStep(++this.staleAnswers, this.opts.retry);
    this.backoffUntil = Date.now() + step.delayMs;
    // The cursors stay: the server resumes every subscription from them in the new id's session.
    if (step.newClient) this.clientId = randomId();
    if (step.failing) {
      this.connecting(active, new TRPCClientError(`The server took ${this.staleAnswers} polls in a row for stale ones`));
    }
  }

  /** A poll-wide fatal error ends every subscription the poll carried. */
  private fatal(active: PollEntry[], error: TRPCClientError<any>, wire: WireFailure): void {
    const carried = this.current(active);
    for (const entry of carried) this.remove(entry.key);
    this.opts.deliver({ kind: 'fatal', error, wire }, carried);
  }

  /** Tells the server the client has no subscriptions left, so it stops their procedures now rather than at expiry. */
  private async farewell(): Promise<void> {
    this.spoken = false;
    try {
      const response = await this.send([], timeoutSignal(this.opts.watchdogMarginMs));
      await response.text();
    } catch {
      // Best effort: the server's idle expiry covers a farewell that got lost.
    }
  }
}
