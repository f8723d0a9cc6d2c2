import { afterEach, describe, expect, it, vi } from 'vitest';
import { RPC_CODES } from '@trpc-longpoll/protocol';
import { STALE_ANSWERS_PER_CLIENT, STALE_MAX_DELAY_MS, backoffDelay, staleStep } from '../src/internals/backoff';
import { getTransformer } from '../src/internals/transformer';
import { judgeEnd } from '../src/internals/verdict';

/**
 * The pure rules behind recovering from pressure and from a lost client id:
 * the poll loop and every tab's subscription judge ends with `judgeEnd` (through `judgeResult`), and
 * the poll loop paces stale answers with `staleStep`.
 */
const plain = getTransformer(undefined);
const shape = (code: number, message = 'refused') => ({ message, code, data: {} });

afterEach(() => {
  vi.restoreAllMocks();
});

describe('judgeEnd: capacity refusals are transient', () => {
  it('TOO_MANY_REQUESTS with retryAfterMs is retried, carrying the pause', () => {
    const verdict = judgeEnd(plain, { type: 'error', error: shape(RPC_CODES.TOO_MANY_REQUESTS), retryAfterMs: 300 });
    expect(verdict).toEqual({ kind: 'retry', shape: shape(RPC_CODES.TOO_MANY_REQUESTS), retryAfterMs: 300 });
  });

  it('SERVICE_UNAVAILABLE is retried with or without retryAfterMs', () => {
    expect(judgeEnd(plain, { type: 'error', error: shape(RPC_CODES.SERVICE_UNAVAILABLE), retryAfterMs: 0 })).toEqual({
      kind: 'retry',
      shape: shape(RPC_CODES.SERVICE_UNAVAILABLE),
      retryAfterMs: 0,
    });
    expect(judgeEnd(plain, { type: 'error', error: shape(RPC_CODES.SERVICE_UNAVAILABLE) })).toEqual({
      kind: 'retry',
      shape: shape(RPC_CODES.SERVICE_UNAVAILABLE),
    });
  });

  it('TOO_MANY_REQUESTS without retryAfterMs stays fatal, as tRPC judges it', () => {
    expect(judgeEnd(plain, { type: 'error', error: shape(RPC_CODES.TOO_MANY_REQUESTS) }).kind).toBe('fatal');
  });

  it('retryAfterMs does not make other codes retryable, nor override a cursor verdict', () => {
    expect(judgeEnd(plain, { type: 'error', error: shape(RPC_CODES.FORBIDDEN), retryAfterMs: 300 }).kind).toBe('fatal');
    const cursor = judgeEnd(plain, { type: 'error', error: shape(RPC_CODES.CONFLICT), reason: 'resume-lost', retryAfterMs: 300 });
    expect(cursor).toMatchObject({ kind: 'cursor', reason: 'resume-lost' });
  });

  it('the backoff never undercuts retryAfterMs', () => {
    for (let attempt = 1; attempt <= 10; attempt++) {
      expect(backoffDelay(attempt, {}, 300)).toBeGreaterThanOrEqual(300);
    }
    vi.spyOn(Math, 'random').mockReturnValue(0.99);
    // A later attempt's jitter may exceed the hint; then the longer wait wins.
    expect(backoffDelay(4, { initialDelayMs: 250 }, 300)).toBeCloseTo(0.99 * 2_000);
  });
});

describe('staleStep: pacing stale answers and giving up the client id', () => {
  it('the first stale answer is a race: a short pause, no connecting, same id', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    expect(staleStep(1, {})).toEqual({ failing: false, newClient: false, delayMs: 125 });
  });

  it('the second is a failure, the third switches to a fresh id at once', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    expect(staleStep(2, {})).toEqual({ failing: true, newClient: false, delayMs: 250 });
    expect(STALE_ANSWERS_PER_CLIENT).toBe(3);
    expect(staleStep(3, {})).toEqual({ failing: true, newClient: true, delayMs: 0 });
  });

  it('the wait before the switch stays under a second with the default retry options', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999999);
    const total = staleStep(1, {}).delayMs + staleStep(2, {}).delayMs + staleStep(3, {}).delayMs;
    expect(total).toBeLessThan(750);
  });

  it('stale pauses are capped even when the retry options allow long waits', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999999);
    const slow = { initialDelayMs: 5_000, maxDelayMs: 60_000 };
    for (const count of [1, 2, 4, 5, 50, 2_000]) expect(staleStep(count, slow).delayMs).toBeLessThan(STALE_MAX_DELAY_MS);
    expect(staleStep(1, { initialDelayMs: 10, maxDelayMs: 20 }).delayMs).toBeLessThan(20);
  });

  it('a server that calls every poll stale gets a fresh id every third answer, and paced polls in between', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999999);
    const steps = Array.from({ length: 9 }, (_, i) => staleStep(i + 1, {}));
    expect(steps.map((step) => step.newClient)).toEqual([false, false, true, false, false, true, false, false, true]);
    expect(steps.slice(3).filter((step) => !step.newClient).every((step) => step.delayMs > 990)).toBe(true);
  });
});
