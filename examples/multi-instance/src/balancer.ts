/**
 * A small round-robin load balancer, standing in for nginx/an ALB: no
 * sticky sessions, each request goes to the next instance. Like a real one
 * it takes an instance out of rotation when connecting to it fails (passive
 * health check) and sends that request to the next one instead.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Balancer {
  url: string;
  /** How many requests each upstream got. */
  counts: Map<string, number>;
  close(): Promise<void>;
}

export async function startBalancer(upstreams: string[], opts: { downMs?: number; onDown?: (url: string) => void } = {}): Promise<Balancer> {
  const downUntil = new Map<string, number>();
  const counts = new Map(upstreams.map((url) => [url, 0]));
  const sockets = new Set<Socket>();
  let turn = 0;

  const healthy = () => upstreams.filter((url) => (downUntil.get(url) ?? 0) <= Date.now());

  function forward(req: IncomingMessage, res: ServerResponse, body: Buffer, attemptsLeft: number): void {
    const candidates = healthy();
    if (candidates.length === 0 || attemptsLeft === 0) {
      res.writeHead(502, { 'content-type': 'text/plain' }).end('No healthy upstream');
      return;
    }
    const upstream = candidates[turn++ % candidates.length]!;
    counts.set(upstream, (counts.get(upstream) ?? 0) + 1);
    const target = new URL(req.url ?? '/', upstream);
    const outgoing = request(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (incoming) => {
      res.writeHead(incoming.statusCode ?? 502, incoming.headers);
      incoming.pipe(res);
      // The instance died mid-answer: the client sees a broken response and retries.
      incoming.once('aborted', () => res.destroy());
    });
    outgoing.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED' && !res.headersSent) {
        // Nothing reached the instance, so trying the next one is safe.
        downUntil.set(upstream, Date.now() + (opts.downMs ?? 10_000));
        opts.onDown?.(upstream);
        forward(req, res, body, attemptsLeft - 1);
        return;
      }
      if (res.headersSent) res.destroy();
      else res.writeHead(502, { 'content-type': 'text/plain' }).end('Upstream failed');
    });
    // A client that gives up must not leave the instance holding its poll.
    res.once('close', () => {
      if (!res.writableFinished) outgoing.destroy();
    });
    outgoing.end(body);
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => forward(req, res, Buffer.concat(chunks), upstreams.length));
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
