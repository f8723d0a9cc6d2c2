/*
 * Small runtime helpers both sides of the protocol share, with nothing
 * host-specific in them: they run in Node, browsers, workers and React Native.
 */

/**
 * `bytes` random bytes as base64url text: 16 bytes (128 bits) for client ids
 * and run references, which must not be guessable. Uses Web Crypto where the
 * host has it; where it does not (React Native without a polyfill), falls back
 * to `Math.random`, which is fine for a client id (the server binds state to
 * `identify`, not to the id's secrecy) but not for anything secret.
 */
export function randomId(bytes = 16): string {
  const buffer = new Uint8Array(bytes);
  const crypto = (globalThis as { crypto?: { getRandomValues?: (array: Uint8Array) => Uint8Array } }).crypto;
  if (crypto?.getRandomValues) crypto.getRandomValues(buffer);
  else for (let i = 0; i < bytes; i++) buffer[i] = Math.floor(Math.random() * 256);
  let binary = '';
  for (const byte of buffer) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export interface WaitOptions {
  /** Ends the wait when it aborts (already aborted: the wait ends at once). */
  signal?: AbortSignal | undefined;
  /** Ends the wait after this many ms; none: no deadline. */
  ms?: number | undefined;
  /**
   * Hands over the function that ends the wait, for whoever brings the news;
   * returns the function that takes it back. Called once, before anything else.
   */
  register?: (wake: () => void) => () => void;
}

/**
 * Resolves when the wait is woken, its signal aborts or its time is up,
 * whichever comes first — and always takes back the timer, the listener and
 * the registration, so a long-lived waiter piles nothing up.
 */
export function waitUntil(opts: WaitOptions): Promise<void> {
  return new Promise<void>((resolve) => {
    const { signal, ms, register } = opts;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let unregister: (() => void) | undefined;
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      unregister?.();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    unregister = register?.(done);
    if (settled) return unregister?.();
    if (signal?.aborted) return done();
    signal?.addEventListener('abort', done, { once: true });
    if (ms !== undefined) timer = setTimeout(done, Math.max(0, ms));
  });
}

/** `AbortSignal.timeout(ms)`, or the same made by hand where the host lacks it (React Native, older engines). */
export function timeoutSignal(ms: number): AbortSignal {
  if (typeof AbortSignal.timeout === 'function') return AbortSignal.timeout(ms);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`Timed out after ${ms} ms`)), ms);
  (timer as { unref?: () => void }).unref?.();
  return controller.signal;
}

/**
 * Runs `fn` once the current event-loop turn is over (after its I/O callbacks, as
 * Node's `setImmediate`), and returns what cancels it. Hosts without
 * `setImmediate` (browsers, Cloudflare Workers without `nodejs_compat`, Deno's
 * web side) get a zero-delay timer instead.
 */
export function afterTurn(fn: () => void): () => void {
  const immediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
  if (typeof immediate === 'function') {
    const handle = immediate(fn);
    return () => (globalThis as unknown as { clearImmediate: (handle: unknown) => void }).clearImmediate(handle);
  }
  const timer = setTimeout(fn, 0);
  return () => clearTimeout(timer);
}
