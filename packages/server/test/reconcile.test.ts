/**
 * The rows of docs/protocol.md §6 ("Resuming: reconciling a cursor"), one test
 * each, against the pure decision; `r` is the cached run, `c` the cursor.
 */
import type { Cursor } from '@trpc-longpoll/protocol';
import { describe, expect, it } from 'vitest';
import { buildAnswer, type AnsweredRun } from '../src/core/answer';
import { reconcile, type CachedRun } from '../src/core/reconcile';

/** A cached run with id `r1`; `positions` are the ids a client may stand at to be adopted. */
function cachedRun(init: Partial<Omit<CachedRun, 'linesUpWith'>> & { positions?: string[] } = {}): CachedRun {
  const { positions = [], ...rest } = init;
  return { id: 'r1', ended: false, failedAtStart: false, origin: undefined, linesUpWith: (id) => positions.includes(id), ...rest };
}

/** The client's input, which these rows must not need. */
const unread = () => {
  throw new Error('the input was read');
};

describe('reconcile (docs/protocol.md §6)', () => {
  it('r exists, no c: keep r; the answer announces it', () => {
    const run = cachedRun();
    expect(reconcile(undefined, run, unread)).toEqual({ action: 'keep', run });
  });

  it('r exists, c.run = r.run: acknowledge; if c.restart and r has ended, start a new run from c.lastEventId', () => {
    const run = cachedRun();
    expect(reconcile({ run: 'r1', seq: 4 }, run, unread)).toEqual({ action: 'ack', run, seq: 4 });
    // A restart asked for a run that has not ended only acknowledges.
    expect(reconcile({ run: 'r1', seq: 4, lastEventId: 'e4', restart: true }, run, unread)).toEqual({ action: 'ack', run, seq: 4 });
    const ended = cachedRun({ ended: true });
    expect(reconcile({ run: 'r1', seq: 4, lastEventId: 'e4', restart: true }, ended, unread)).toEqual({ action: 'start', lastEventId: 'e4' });
    expect(reconcile({ run: 'r1', seq: 4, lastEventId: 'e4' }, ended, unread)).toEqual({ action: 'ack', run: ended, seq: 4 });
  });

  it('r exists, r was started from this very cursor: keep r; all three of run, seq and lastEventId must match', () => {
    const origin: Cursor = { run: 'elsewhere', seq: 3, lastEventId: 'e7' };
    const run = cachedRun({ origin });
    expect(reconcile({ ...origin }, run, unread)).toEqual({ action: 'keep', run });
    // A client that came back to a run restarts its seq at 0, so run and seq alone recur with a later lastEventId.
    expect(reconcile({ run: 'elsewhere', seq: 3, lastEventId: 'e9' }, run, unread)).toEqual({ action: 'start', lastEventId: 'e9' });
    expect(reconcile({ run: 'elsewhere', seq: 2, lastEventId: 'e7' }, run, unread)).toEqual({ action: 'start', lastEventId: 'e7' });
  });

  it("r exists, c names another run, and the client's position lines up with r: adopt r", () => {
    const run = cachedRun({ positions: ['e5', 'e6'] });
    expect(reconcile({ run: 'elsewhere', seq: 2, lastEventId: 'e5' }, run, unread)).toEqual({ action: 'adopt', run, lastEventId: 'e5' });
    // Before the client has any event, its position is its input's lastEventId.
    expect(reconcile({ run: 'elsewhere', seq: 0 }, run, () => 'e6')).toEqual({ action: 'adopt', run, lastEventId: 'e6' });
    // A restart asks for a new run, whatever lines up.
    expect(reconcile({ run: 'elsewhere', seq: 2, lastEventId: 'e5', restart: true }, run, unread)).toEqual({ action: 'start', lastEventId: 'e5' });
  });

  it('r exists otherwise: stop r; continue as if there were none', () => {
    const run = cachedRun({ positions: ['e5'] });
    // `start` and `lost` leave r behind: whoever applies them stops it.
    expect(reconcile({ run: 'elsewhere', seq: 2, lastEventId: 'e9' }, run, unread)).toEqual({ action: 'start', lastEventId: 'e9' });
    expect(reconcile({ run: 'elsewhere', seq: 0 }, run, () => undefined)).toEqual({ action: 'start', lastEventId: undefined });
    expect(reconcile({ run: 'elsewhere', seq: 2 }, run, unread)).toEqual({ action: 'lost' });
  });

  it("no r, no c: start a new run with the client's input", () => {
    expect(reconcile(undefined, undefined, unread)).toEqual({ action: 'start', lastEventId: undefined });
  });

  it('no r, c.restart, or c.lastEventId set, or c.seq = 0: start a new run from c.lastEventId', () => {
    expect(reconcile({ run: 'gone', seq: 3, restart: true }, undefined, unread)).toEqual({ action: 'start', lastEventId: undefined });
    expect(reconcile({ run: 'gone', seq: 3, lastEventId: 'e3' }, undefined, unread)).toEqual({ action: 'start', lastEventId: 'e3' });
    expect(reconcile({ run: 'gone', seq: 0 }, undefined, unread)).toEqual({ action: 'start', lastEventId: undefined });
  });

  it('no r, untracked events received (c.seq > 0, no lastEventId): resume-lost', () => {
    expect(reconcile({ run: 'gone', seq: 3 }, undefined, unread)).toEqual({ action: 'lost' });
  });

  it('a run that failed before its iterator existed is answered once and forgotten: no cursor can refer to it, so a retry starts afresh', () => {
    const failed = cachedRun({ failedAtStart: true, ended: true, positions: ['e5'] });
    // Its position is nobody's to line up with.
    expect(reconcile({ run: 'elsewhere', seq: 2, lastEventId: 'e5' }, failed, unread)).toEqual({ action: 'start', lastEventId: 'e5' });
    // Until an answer has carried its failure, a poll without a cursor keeps it, to answer with it.
    expect(reconcile(undefined, failed, unread)).toEqual({ action: 'keep', run: failed });
    // The answer carries its end without a run, and tells its caller to forget it.
    const end = '{"type":"error","error":{"message":"bad input"}}';
    const run: AnsweredRun = { id: 'r1', hasNews: true, pending: [], endJson: end, failedAtStart: true };
    const answer = buildAnswer(new Map([['k', run]]), [{ key: 'k', path: 'p' }], new Map(), { maxBatchEvents: 10, maxBatchBytes: 1_000 });
    expect(JSON.parse(answer.body)).toEqual({ v: 1, results: { k: { end: JSON.parse(end) } } });
    expect(answer.forget).toEqual(['k']);
  });
});
