import type { PublishRequest, ServerStats } from '../shared';

/** The load generator's line to the server process's control port. */
export class Control {
  constructor(private readonly port: number) {}

  private async call<T>(path: string, body?: unknown): Promise<T> {
    const response = await fetch(`http://127.0.0.1:${this.port}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    if (!response.ok) throw new Error(`control ${path}: HTTP ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  }

  stats(): Promise<ServerStats> {
    return this.call('/stats');
  }

  /** Collects garbage in the server, then reads its figures. */
  gcStats(): Promise<ServerStats> {
    return this.call('/gc');
  }

  /** Writes a heap snapshot of the server process to `file`. */
  heapSnapshot(file: string): Promise<{ file: string }> {
    return this.call(`/heapsnapshot?file=${encodeURIComponent(file)}`);
  }

  /** Resolves once every event is stored; `ms`: how long publishing took, in the server. */
  publish(request: PublishRequest): Promise<{ published: number; ms: number }> {
    return this.call('/publish', request);
  }

  /** Waits until the server's figures satisfy `check`. */
  async until(check: (stats: ServerStats) => boolean, what: string, ms = 30_000): Promise<ServerStats> {
    const deadline = Date.now() + ms;
    for (;;) {
      const stats = await this.stats();
      if (check(stats)) return stats;
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}: ${JSON.stringify({ ...stats, subscribers: undefined })}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** Resolves once `check` holds, checking after each event and every few ms. */
export function waitUntil(check: () => boolean, what: string | (() => string), ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + ms;
    const tick = () => {
      if (check()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`Timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`));
      setTimeout(tick, 2);
    };
    tick();
  });
}
