import { TRPCClientError, type OperationResultEnvelope } from '@trpc/client';
import type { TRPCCombinedDataTransformer } from '@trpc/server';
import type { Observer } from '@trpc/server/observable';
import type { Cursor, SubscriptionResult, WireEvent } from '@trpc-longpoll/protocol';
import { LongPollCursorError } from '../errors';
import { judgeResult, type EndVerdict, type SubscriptionState } from './verdict';

export type Envelope = OperationResultEnvelope<unknown, TRPCClientError<any>>;
export type SubscriptionObserver = Observer<Envelope, TRPCClientError<any>>;

/**
 * One subscription as its own tab sees it: turns the raw results of the polls
 * that carried it into tRPC envelopes, dropping resent events by cursor. It
 * never touches the network, so it works the same whether this tab polls or
 * another tab polls for it.
 */
export class Subscription implements SubscriptionState {
  cursor?: Cursor;
  /** `started` was emitted and not followed by a failure since. */
  healthy = false;
  closed = false;

  constructor(
    readonly key: string,
    readonly path: string,
    /** Already serialized with the input transformer. */
    readonly input: unknown,
    private readonly observer: SubscriptionObserver,
    private readonly transformer: TRPCCombinedDataTransformer,
    /** Called once when the subscription ends for any reason but `close()`, so its poll entry goes too. */
    private readonly onEnd: () => void,
  ) {}

  /** A poll that carried this subscription was answered; `result` is absent when nothing was new. */
  answered(result: SubscriptionResult | undefined): void {
    if (this.closed) return;
    const judged = judgeResult(this, result, this.transformer);
    this.cursor = judged.cursor;
    this.healthy = judged.healthy;
    if (judged.started && this.emit({ type: 'started' })) this.emit({ type: 'state', state: 'pending', error: null });
    for (const event of judged.news) if (this.closed || !this.deliver(event)) return;
    if (judged.end && !this.closed) this.ended(judged.end);
  }

  /** The poll failed in a way worth retrying. */
  transient(error: TRPCClientError<any>): void {
    if (this.closed) return;
    this.healthy = false;
    this.emit({ type: 'state', state: 'connecting', error });
  }

  fail(error: TRPCClientError<any>): void {
    if (this.closed) return;
    this.end();
    this.observer.error(error);
  }

  /** The consumer unsubscribed: nothing more is emitted. */
  close(): void {
    this.closed = true;
  }

  private end(): void {
    this.closed = true;
    this.onEnd();
  }

  private emit(result: Envelope['result']): boolean {
    try {
      this.observer.next({ result });
      return true;
    } catch (cause) {
      // A throwing consumer ends its own subscription, not the others'.
      this.fail(TRPCClientError.from(cause instanceof Error ? cause : new Error(String(cause))));
      return false;
    }
  }

  private deliver(event: WireEvent): boolean {
    let data: unknown;
    try {
      data = this.transformer.output.deserialize(event.data);
    } catch (cause) {
      this.fail(new TRPCClientError('An event could not be deserialized', { cause: cause as Error }));
      return false;
    }
    return event.id === undefined ? this.emit({ data }) : this.emit({ id: event.id, data: { id: event.id, data } });
  }

  private ended(verdict: EndVerdict): void {
    switch (verdict.kind) {
      case 'stopped':
        this.end();
        this.emit({ type: 'stopped' });
        this.emit({ type: 'state', state: 'idle', error: null });
        this.observer.complete();
        return;
      case 'cursor':
        this.fail(new LongPollCursorError(verdict.shape, verdict.reason));
        return;
      case 'retry':
        // The poll loop asks for a new run after a pause; until then the subscription shows why it waits.
        this.emit({ type: 'state', state: 'connecting', error: TRPCClientError.from({ error: verdict.shape as never }) });
        return;
      case 'fatal':
        this.fail(TRPCClientError.from({ error: verdict.shape as never }));
    }
  }
}
