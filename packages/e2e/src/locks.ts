/**
 * The part of Web Locks the link uses (Node has `BroadcastChannel` but no
 * `navigator.locks`): exclusive locks granted in request order, released when
 * the callback settles. A stand-in for the tests that run several "tabs" in one process.
 */
export function createLocks() {
  const queues = new Map<string, Array<() => void>>();
  const held = new Set<string>();
  const grantNext = (name: string) => {
    const next = queues.get(name)?.shift();
    if (next) next();
    else held.delete(name);
  };
  return {
    request(name: string, options: { signal?: AbortSignal }, callback: (lock: unknown) => Promise<void>): Promise<unknown> {
      return new Promise((resolve, reject) => {
        const grant = () => {
          options.signal?.removeEventListener('abort', onAbort);
          held.add(name);
          void callback({ name })
            .then(resolve, reject)
            .finally(() => grantNext(name));
        };
        const onAbort = () => {
          const queue = queues.get(name) ?? [];
          queues.set(
            name,
            queue.filter((waiter) => waiter !== grant),
          );
          reject(new DOMException('The lock request was aborted', 'AbortError'));
        };
        if (!held.has(name)) return grant();
        options.signal?.addEventListener('abort', onAbort, { once: true });
        const queue = queues.get(name) ?? [];
        queue.push(grant);
        queues.set(name, queue);
      });
    },
  };
}
