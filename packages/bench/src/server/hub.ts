import type { BenchEvent } from '../shared';

type Listener = (event: BenchEvent) => void;

/**
 * The in-process publisher every transport reads from. A subscriber queues
 * what it has not yielded yet, so a burst published in one turn is never lost
 * and never blocks the publisher.
 */
export class Hub {
  private readonly topics = new Map<string, Set<Listener>>();

  publish(topic: string, event: BenchEvent): void {
    const listeners = this.topics.get(topic);
    if (!listeners) return;
    for (const listener of listeners) listener(event);
  }

  subscriberCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const [topic, listeners] of this.topics) counts[topic] = listeners.size;
    return counts;
  }

  async *subscribe(topic: string, signal: AbortSignal | undefined): AsyncGenerator<BenchEvent> {
    let queue: BenchEvent[] = [];
    let wake: (() => void) | null = null;
    const listener: Listener = (event) => {
      queue.push(event);
      if (wake) {
        const resolve = wake;
        wake = null;
        resolve();
      }
    };
    const onAbort = () => wake?.();
    let listeners = this.topics.get(topic);
    if (!listeners) this.topics.set(topic, (listeners = new Set()));
    listeners.add(listener);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal?.aborted) {
        if (queue.length === 0) {
          await new Promise<void>((resolve) => (wake = resolve));
          continue;
        }
        const batch = queue;
        queue = [];
        for (const event of batch) yield event;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      listeners.delete(listener);
      if (listeners.size === 0) this.topics.delete(topic);
    }
  }
}
