import { describe, expect, it } from 'vitest';
import { advanceCursor, afterEvent, enterRun, isNewEvent, restartCursor } from '../src/internals/cursor';

/**
 * The leader tab builds its polls from `advanceCursor`; every tab drops
 * resent events with `isNewEvent`/`afterEvent`. Both must land on the same cursor.
 */
describe('cursor advancement shared by the polling tab and the delivering tab', () => {
  it('a new run starts at seq 0 and keeps the last tracked id', () => {
    expect(enterRun(undefined, 'r1')).toEqual({ run: 'r1', seq: 0 });
    expect(enterRun({ run: 'r1', seq: 4, lastEventId: 'e4', restart: true }, 'r2')).toEqual({ run: 'r2', seq: 0, lastEventId: 'e4' });
    const same = { run: 'r1', seq: 4 };
    expect(enterRun(same, 'r1')).toBe(same);
    expect(enterRun(same, undefined)).toBe(same);
  });

  it('skips events at or below the cursor (resends) and takes the tracked id of the last new one', () => {
    const result = {
      run: 'r1',
      events: [{ seq: 2, id: 'a' }, { seq: 3, id: 'b' }, { seq: 4 }, { seq: 5, id: 'c' }],
    };
    const cursor = advanceCursor({ run: 'r1', seq: 3, lastEventId: 'b' }, result);
    expect(cursor).toEqual({ run: 'r1', seq: 5, lastEventId: 'c' });

    // Event by event, as a subscription delivers them, it comes to the same place.
    let stepwise = enterRun({ run: 'r1', seq: 3, lastEventId: 'b' }, result.run);
    const delivered: number[] = [];
    for (const event of result.events) {
      if (!isNewEvent(stepwise, event)) continue;
      stepwise = afterEvent(stepwise, event);
      delivered.push(event.seq);
    }
    expect(delivered).toEqual([4, 5]);
    expect(stepwise).toEqual(cursor);
  });

  it('without a run there is no cursor yet, so nothing counts as delivered', () => {
    expect(advanceCursor(undefined, { events: [{ seq: 1 }] })).toBeUndefined();
    expect(isNewEvent(undefined, { seq: 1 })).toBe(false);
  });

  it('a restart asks for a new run, and the new run clears the request', () => {
    const restarting = restartCursor({ run: 'r1', seq: 2, lastEventId: 'x' });
    expect(restarting).toEqual({ run: 'r1', seq: 2, lastEventId: 'x', restart: true });
    expect(advanceCursor(restarting, { run: 'r2', events: [{ seq: 1, id: 'y' }] })).toEqual({ run: 'r2', seq: 1, lastEventId: 'y' });
    expect(restartCursor(undefined)).toBeUndefined();
  });

  it('does not change the cursor it is given', () => {
    const cursor = { run: 'r1', seq: 1 };
    advanceCursor(cursor, { run: 'r1', events: [{ seq: 2, id: 'z' }] });
    expect(cursor).toEqual({ run: 'r1', seq: 1 });
  });
});
