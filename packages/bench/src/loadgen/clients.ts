import { createTRPCClient, createWSClient, httpSubscriptionLink, wsLink, type TRPCLink } from '@trpc/client';
import { longPollLink } from '@trpc-longpoll/client';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import type { BenchRouter } from '../server/router';
import superjson from 'superjson';
import { SUPERJSON, type BenchEvent, type Transport } from '../shared';

/** A procedure of the bench router: untracked, tracked, through the Redis log, or through a log scenario's log. */
export type BenchPath = 'events' | 'tracked' | 'redis' | 'log';

export interface BenchClient {
  /** Returns the unsubscribe function. */
  subscribe(path: BenchPath, topic: string, onData: (event: BenchEvent) => void, onError?: (error: unknown) => void): () => void;
  close(): Promise<void>;
}

export function createBenchClient(transport: Transport, port: number): BenchClient {
  const url = `http://127.0.0.1:${port}`;
  if (transport === 'floor') return createFloorClient(url);
  let closeLink: () => Promise<void> = async () => {};
  let link: TRPCLink<BenchRouter>;
  // The bench router's type says "no transformer"; with --superjson both ends use superjson all the same.
  const transformer = (SUPERJSON ? { transformer: superjson } : {}) as {};
  if (transport === 'longpoll') {
    link = longPollLink<BenchRouter>({ url, ...transformer });
  } else if (transport === 'sse') {
    link = httpSubscriptionLink<BenchRouter, typeof EventSource>({ url, EventSource, ...transformer });
  } else {
    const wsClient = createWSClient({ url: `ws://127.0.0.1:${port}`, WebSocket: WebSocket as never });
    link = wsLink<BenchRouter>({ client: wsClient, ...transformer });
    closeLink = () => wsClient.close();
  }
  const trpc = createTRPCClient<BenchRouter>({ links: [link] });
  const unsubscribers = new Set<() => void>();
  return {
    subscribe(path, topic, onData, onError) {
      const callbacks = {
        onError: (error: unknown) => onError?.(error),
      };
      const subscription =
        path === 'events'
          ? trpc.events.subscribe({ topic }, { ...callbacks, onData })
          : trpc[path].subscribe({ topic }, { ...callbacks, onData: (envelope) => onData(envelope.data) });
      const unsubscribe = () => {
        unsubscribers.delete(unsubscribe);
        subscription.unsubscribe();
      };
      unsubscribers.add(unsubscribe);
      return unsubscribe;
    },
    async close() {
      for (const unsubscribe of [...unsubscribers]) unsubscribe();
      await closeLink();
    },
  };
}

interface FloorResponse {
  results: Record<string, { events?: { seq: number; data: BenchEvent }[] }>;
}

/** The floor's client: a plain `fetch` loop, no tRPC. */
function createFloorClient(url: string): BenchClient {
  const client = Math.random().toString(36).slice(2);
  const subs = new Map<string, { path: BenchPath; topic: string; seq: number; onData: (event: BenchEvent) => void }>();
  let nextKey = 0;
  let inflight: AbortController | null = null;
  let running = false;
  let closed = false;

  async function loop() {
    running = true;
    while (!closed && subs.size > 0) {
      const controller = new AbortController();
      inflight = controller;
      const body = JSON.stringify({
        client,
        subs: [...subs].map(([key, sub]) => ({ key, path: sub.path, topic: sub.topic, seq: sub.seq })),
      });
      try {
        const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: controller.signal });
        const answer = (await response.json()) as FloorResponse;
        for (const [key, result] of Object.entries(answer.results)) {
          const sub = subs.get(key);
          if (!sub) continue;
          for (const event of result.events ?? []) {
            if (event.seq <= sub.seq) continue;
            sub.seq = event.seq;
            sub.onData(event.data);
          }
        }
      } catch {
        // Aborted to re-poll with a new set, or the server went away.
        if (!controller.signal.aborted) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      // As longPollLink does: undici frees the connection only after this turn; without the pause each client would use two.
      await new Promise((resolve) => setImmediate(resolve));
    }
    running = false;
  }

  let scheduled = false;
  /** Several changes in one turn share one re-poll. */
  function changed() {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      if (inflight) inflight.abort();
      if (!running) void loop();
    });
  }

  return {
    subscribe(path, topic, onData) {
      const key = (nextKey++).toString(36);
      subs.set(key, { path, topic, seq: 0, onData });
      changed();
      return () => {
        if (subs.delete(key)) changed();
      };
    },
    async close() {
      closed = true;
      subs.clear();
      inflight?.abort();
      await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client, subs: [] }) }).catch(() => {});
    },
  };
}
