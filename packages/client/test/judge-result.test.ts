import { describe, expect, it } from 'vitest';
import { RPC_CODES } from '@trpc-longpoll/protocol';
import { getTransformer } from '../src/internals/transformer';
import { judgeResult } from '../src/internals/verdict';

/**
 * `judgeResult` is the one place the per-subscription rules of protocol §8
 * live: the poll loop tracks its entries with it and every subscription
 * (in its own tab) emits envelopes from it, so the two cannot drift apart.
 */
const plain = getTransformer(undefined);
const shape = (code: number, message = 'failed') => ({ message, code, data: {} });

describe('judgeResult: one answer for one subscription', () => {
  it('the first result with a run starts the subscription at seq 0 and hands over every new event', () => {
    const judged = judgeResult({ healthy: false }, { run: 'r1', events: [{ seq: 1, id: 'a' }, { seq: 2 }] }, plain);
    expect(judged).toEqual({
      cursor: { run: 'r1', seq: 2, lastEventId: 'a' },
      healthy: true,
      started: true,
      news: [{ seq: 1, id: 'a' }, { seq: 2 }],
    });
  });

  it('a healthy subscription is not started again; resent events are left out', () => {
    const judged = judgeResult({ cursor: { run: 'r1', seq: 2 }, healthy: true }, { run: 'r1', events: [{ seq: 2 }, { seq: 3 }] }, plain);
    expect(judged).toEqual({ cursor: { run: 'r1', seq: 3 }, healthy: true, started: false, news: [{ seq: 3 }] });
  });

  it('an answer with nothing new restarts a recovering subscription that has a cursor, and nothing else', () => {
    const cursor = { run: 'r1', seq: 4 };
    expect(judgeResult({ cursor, healthy: false }, undefined, plain)).toEqual({ cursor, healthy: true, started: true, news: [] });
    expect(judgeResult({ cursor, healthy: true }, undefined, plain)).toEqual({ cursor, healthy: true, started: false, news: [] });
    expect(judgeResult({ healthy: false }, undefined, plain)).toEqual({ healthy: false, started: false, news: [] });
  });

  it('events without a run cannot be placed, so none is news', () => {
    expect(judgeResult({ healthy: false }, { events: [{ seq: 1 }] }, plain)).toEqual({ healthy: false, started: false, news: [] });
  });

  it('a retryable end asks for a new run from the position reached, and the subscription is no longer healthy', () => {
    const judged = judgeResult(
      { cursor: { run: 'r1', seq: 1, lastEventId: 'a' }, healthy: true },
      { run: 'r1', events: [{ seq: 2, id: 'b' }], end: { type: 'error', error: shape(RPC_CODES.INTERNAL_SERVER_ERROR) } },
      plain,
    );
    expect(judged).toEqual({
      cursor: { run: 'r1', seq: 2, lastEventId: 'b', restart: true },
      healthy: false,
      started: false,
      news: [{ seq: 2, id: 'b' }],
      end: { kind: 'retry', shape: shape(RPC_CODES.INTERNAL_SERVER_ERROR) },
    });
  });

  it('a refusal for capacity before any run is retried with its pause, without a cursor to restart', () => {
    const end = { type: 'error' as const, error: shape(RPC_CODES.TOO_MANY_REQUESTS), retryAfterMs: 300 };
    expect(judgeResult({ healthy: false }, { end }, plain)).toEqual({
      healthy: false,
      started: false,
      news: [],
      end: { kind: 'retry', shape: shape(RPC_CODES.TOO_MANY_REQUESTS), retryAfterMs: 300 },
    });
  });

  it('a run that starts and fails in one answer is started, then waits for a new run', () => {
    const judged = judgeResult({ healthy: false }, { run: 'r1', end: { type: 'error', error: shape(RPC_CODES.SERVICE_UNAVAILABLE) } }, plain);
    expect(judged).toMatchObject({ cursor: { run: 'r1', seq: 0, restart: true }, healthy: false, started: true, end: { kind: 'retry' } });
  });

  it('stopped, cursor and fatal ends are passed on as verdicts, leaving the cursor as delivered', () => {
    const state = { cursor: { run: 'r1', seq: 1 }, healthy: true };
    expect(judgeResult(state, { run: 'r1', events: [{ seq: 2 }], end: { type: 'stopped' } }, plain)).toMatchObject({
      cursor: { run: 'r1', seq: 2 },
      end: { kind: 'stopped' },
    });
    const gone = { type: 'error' as const, error: shape(RPC_CODES.CONFLICT), reason: 'gone' as const };
    expect(judgeResult(state, { end: gone }, plain).end).toEqual({ kind: 'cursor', shape: shape(RPC_CODES.CONFLICT), reason: 'gone' });
    expect(judgeResult(state, { end: { type: 'error', error: shape(RPC_CODES.FORBIDDEN) } }, plain).end?.kind).toBe('fatal');
  });

  it('does not change the state it is given', () => {
    const state = { cursor: { run: 'r1', seq: 1 }, healthy: false };
    judgeResult(state, { run: 'r1', events: [{ seq: 2 }], end: { type: 'error', error: shape(RPC_CODES.INTERNAL_SERVER_ERROR) } }, plain);
    expect(state).toEqual({ cursor: { run: 'r1', seq: 1 }, healthy: false });
  });
});
