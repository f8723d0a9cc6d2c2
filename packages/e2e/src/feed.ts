import { tracked } from '@trpc/server';

/**
 * A tiny in-process event log for tests: every event gets an increasing id,
 * and subscribers replay what came after their `lastEventId`, then follow live.
 */
export function createFeed<T>() {
  const events: { id: number; data: T }[] = [];
  const listeners = new Set<() => void>();

  return {
    publish(data: T): string {
      const id = events.length + 1;
      events.push({ id, data });
      for (const listener of [...listeners]) listener();
      return String(id);
    },
    get size() {
      return events.length;
    },
    async *subscribe(lastEventId: string | null | undefined, signal: AbortSignal | undefined) {
      let position = lastEventId ? Number(lastEventId) : events.length;
      let wake: (() => void) | null = null;
      // Registered before reading, so nothing published in between is missed.
      const listener = () => wake?.();
      listeners.add(listener);
      const aborted = new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }));
      try {
        while (!signal?.aborted) {
          while (position < events.length) {
            const event = events[position++]!;
            yield tracked(String(event.id), event.data);
          }
          await Promise.race([new Promise<void>((resolve) => (wake = resolve)), aborted]);
          wake = null;
        }
      } finally {
        listeners.delete(listener);
      }
    },
  };
}
