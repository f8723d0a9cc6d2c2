import { describe, expect, it } from 'vitest';
import { createLongPollClient, createTestRouter, recorder, startServer, useCleanup, type TestRouter } from '../src';

const cleanup = useCleanup();

describe('superjson', () => {
  it('Date, Map, Set, BigInt and undefined survive the round trip', async () => {
    const fixture = createTestRouter();
    const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }) });
    cleanup(() => server.close());
    const rec = recorder<Record<string, unknown>>();
    createLongPollClient<TestRouter>(server.url).rich.subscribe(undefined, rec.callbacks);
    await rec.untilComplete();

    const [value] = rec.data();
    expect(value!.date).toBeInstanceOf(Date);
    expect((value!.date as Date).toISOString()).toBe('2026-01-02T03:04:05.000Z');
    expect(value!.map).toEqual(new Map([['a', 1]]));
    expect(value!.set).toEqual(new Set(['x', 'y']));
    expect(value!.big).toBe(12345678901234567890n);
    // superjson keeps the key; plain JSON would have dropped it.
    expect(Object.keys(value!)).toContain('undef');
    expect(value!.undef).toBeUndefined();
  });

  it('inputs travel through the transformer too', async () => {
    const fixture = createTestRouter();
    const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }) });
    cleanup(() => server.close());
    const rec = recorder();
    createLongPollClient<TestRouter>(server.url).countdown.subscribe({ from: 10 }, rec.callbacks);
    await rec.untilComplete();
    expect(rec.data()).toEqual([10, 9, 8]);
  });
});
