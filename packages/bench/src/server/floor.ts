import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BenchEvent } from '../shared';

/**
 * The floor: a long-poll written by hand on bare `node:http`, with no tRPC and
 * no protocol validation. It reads the same events and answers with the same
 * bytes as the long-poll handler, so it bounds what HTTP itself costs.
 *
 * Request body: `{ client, subs: [{ key, path, topic, seq }] }`, `seq` being the
 * last event the client holds. A sub left out is stopped; no idle expiry.
 */
export type FloorSource = (path: string, topic: string, signal: AbortSignal) => AsyncIterable<{ id?: string; data: BenchEvent }>;

interface FloorSub {
  controller: AbortController;
  /** Serialized events not yet acknowledged. */
  buffer: { seq: number; json: string }[];
  nextSeq: number;
}

interface FloorClient {
  subs: Map<string, FloorSub>;
  wake: (() => void) | null;
}

interface FloorRequest {
  client: string;
  subs: { key: string; path: string; topic: string; seq: number }[];
}

export function createFloorHandler(source: FloorSource, holdMs: number) {
  const clients = new Map<string, FloorClient>();

  function start(client: FloorClient, path: string, topic: string): FloorSub {
    const sub: FloorSub = { controller: new AbortController(), buffer: [], nextSeq: 1 };
    void (async () => {
      for await (const event of source(path, topic, sub.controller.signal)) {
        const seq = sub.nextSeq++;
        const json = event.id === undefined ? JSON.stringify({ seq, data: event.data }) : JSON.stringify({ seq, id: event.id, data: event.data });
        sub.buffer.push({ seq, json });
        client.wake?.();
      }
    })().catch(() => {});
    return sub;
  }

  function answer(client: FloorClient, keys: string[]): string {
    const parts: string[] = [];
    for (const key of keys) {
      const sub = client.subs.get(key)!;
      if (sub.buffer.length === 0) continue;
      parts.push(`${JSON.stringify(key)}:{"run":"floor","events":[${sub.buffer.map((event) => event.json).join(',')}]}`);
    }
    return `{"v":1,"results":{${parts.join(',')}}}`;
  }

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let text = '';
    req.setEncoding('utf8');
    for await (const chunk of req) text += chunk;
    const body = JSON.parse(text) as FloorRequest;
    let client = clients.get(body.client);
    if (!client) clients.set(body.client, (client = { subs: new Map(), wake: null }));
    // A newer poll from the same client replaces the held one.
    client.wake?.();

    const keys = new Set(body.subs.map((sub) => sub.key));
    for (const [key, sub] of client.subs) {
      if (!keys.has(key)) {
        sub.controller.abort();
        client.subs.delete(key);
      }
    }
    let news = false;
    for (const wanted of body.subs) {
      let sub = client.subs.get(wanted.key);
      if (!sub) client.subs.set(wanted.key, (sub = start(client, wanted.path, wanted.topic)));
      let drop = 0;
      while (drop < sub.buffer.length && sub.buffer[drop]!.seq <= wanted.seq) drop++;
      if (drop > 0) sub.buffer.splice(0, drop);
      if (sub.buffer.length > 0) news = true;
    }
    if (client.subs.size === 0) clients.delete(body.client);

    if (!news && body.subs.length > 0) {
      const held = client;
      await new Promise<void>((resolve) => {
        let woken = false;
        const release = () => {
          clearTimeout(timer);
          res.off('close', release);
          if (held.wake === wake) held.wake = null;
          resolve();
        };
        // Answer at the end of the turn, so a burst travels in one response.
        const wake = () => {
          if (woken) return;
          woken = true;
          setImmediate(release);
        };
        const timer = setTimeout(release, holdMs);
        res.once('close', release);
        held.wake = wake;
      });
    }
    if (res.destroyed) return;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(answer(client, [...keys]));
  }

  return (req: IncomingMessage, res: ServerResponse) => {
    serve(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(400);
      res.end();
    });
  };
}
