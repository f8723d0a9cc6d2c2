import { describe, expect, it } from 'vitest';
import { randomId, waitUntil } from '../src';

describe('randomId', () => {
  it('gives 128 bits as 22 base64url characters, different every time', () => {
    const ids = new Set(Array.from({ length: 1_000 }, () => randomId()));
    expect(ids.size).toBe(1_000);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('works without Web Crypto (React Native without a polyfill)', () => {
    const crypto = Object.getOwnPropertyDescriptor(globalThis, 'crypto')!;
    Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true });
    try {
      expect(randomId(6)).toMatch(/^[A-Za-z0-9_-]{8}$/);
    } finally {
      Object.defineProperty(globalThis, 'crypto', crypto);
    }
  });
});

describe('waitUntil', () => {
  it('ends when woken, and takes the registration back', async () => {
    let wake: (() => void) | undefined;
    let unregistered = 0;
    const waiting = waitUntil({ ms: 10_000, register: (w) => ((wake = w), () => unregistered++) });
    wake!();
    await waiting;
    wake!();
    expect(unregistered).toBe(1);
  });

  it('ends when the signal aborts, or at once when it already has, removing its listener', async () => {
    const controller = new AbortController();
    const waiting = waitUntil({ signal: controller.signal });
    controller.abort();
    await waiting;
    await waitUntil({ signal: controller.signal });
    const live = new AbortController();
    let listeners = 0;
    const add = live.signal.addEventListener.bind(live.signal);
    live.signal.addEventListener = ((...args: Parameters<typeof add>) => (listeners++, add(...args))) as typeof add;
    const remove = live.signal.removeEventListener.bind(live.signal);
    live.signal.removeEventListener = ((...args: Parameters<typeof remove>) => (listeners--, remove(...args))) as typeof remove;
    await waitUntil({ signal: live.signal, ms: 1 });
    expect(listeners).toBe(0);
  });

  it('ends when its time is up', async () => {
    const started = Date.now();
    await waitUntil({ ms: 20 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(15);
  });

  it('a wake during registration ends the wait at once', async () => {
    let unregistered = 0;
    await waitUntil({ ms: 10_000, register: (wake) => (wake(), () => unregistered++) });
    expect(unregistered).toBe(1);
  });
});
