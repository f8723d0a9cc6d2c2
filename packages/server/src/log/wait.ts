/** A short random tag that tells this log's ids from those of another log or an earlier process. */
export function newEpoch(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(bytes, (b) => b.toString(36).padStart(2, '0')).join('');
}

/**
 * Resolves when `register`'s wake function is called, any signal aborts, or
 * `ms` passes (if given), and always unregisters, so a long-lived subscriber
 * does not pile up listeners.
 */
export function waitForSignal(
  signals: readonly (AbortSignal | undefined)[],
  ms: number | undefined,
  register: (wake: () => void) => () => void,
): Promise<void> {
  return new Promise<void>((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      unregister();
      for (const signal of signals) signal?.removeEventListener('abort', done);
      resolve();
    };
    const unregister = register(done);
    for (const signal of signals) {
      if (signal?.aborted) return done();
      signal?.addEventListener('abort', done, { once: true });
    }
    if (ms !== undefined) timer = setTimeout(done, Math.max(0, ms));
  });
}
