import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLongPollClient, createTestRouter, recorder, startServer, useCleanup, waitFor, type TestPost, type TestRouter } from '../src';

/**
 * React Native readiness: the link where the host lacks what browsers and Node
 * give — `crypto.getRandomValues`, `AbortSignal.timeout`, `BroadcastChannel`
 * and `navigator.locks` are removed for this file. The link must still make
 * client ids, poll, deliver, share nothing across tabs (there are none) and
 * send its farewell.
 */
const cleanup = useCleanup();
const removed = ['crypto', 'BroadcastChannel', 'navigator'] as const;
const saved = new Map<string, PropertyDescriptor | undefined>();
let timeout: typeof AbortSignal.timeout;

beforeAll(() => {
  for (const name of removed) {
    saved.set(name, Object.getOwnPropertyDescriptor(globalThis, name));
    Object.defineProperty(globalThis, name, { value: undefined, configurable: true, writable: true });
  }
  timeout = AbortSignal.timeout;
  (AbortSignal as { timeout?: unknown }).timeout = undefined;
});

afterAll(() => {
  for (const name of removed) {
    const descriptor = saved.get(name);
    if (descriptor) Object.defineProperty(globalThis, name, descriptor);
    else delete (globalThis as Record<string, unknown>)[name];
  }
  AbortSignal.timeout = timeout;
});

describe('without Web Crypto, AbortSignal.timeout, BroadcastChannel or Web Locks', () => {
  it('subscribes, receives every event, and its farewell stops the procedure', async () => {
    expect(globalThis.crypto).toBeUndefined();
    expect(typeof AbortSignal.timeout).not.toBe('function');
    const fixture = createTestRouter();
    const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }), holdMs: 2_000 });
    cleanup(() => server.close());
    // shareAcrossTabs asks for tab sharing; without BroadcastChannel and Web Locks the link polls on its own.
    const client = createLongPollClient<TestRouter>(server.url, { holdMs: 2_000, shareAcrossTabs: true });
    const rec = recorder<TestPost>();
    const sub = client.post.onAdd.subscribe(undefined, rec.callbacks);
    await rec.untilStarted();
    for (const text of ['a', 'b', 'c']) await client.post.add.mutate({ text });
    const events = await rec.untilData(3);
    expect(events.map((event) => event.data.text)).toEqual(['a', 'b', 'c']);
    sub.unsubscribe();
    // The farewell (sent with the hand-made timeout signal) stops the procedure now, not at idle expiry.
    await waitFor(() => fixture.finallies.includes('onAdd'), 2_000, 'the farewell to stop the procedure');
    expect(rec.errors()).toEqual([]);
  });
});
