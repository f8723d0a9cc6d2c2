import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What the proxy does to one request. */
export type Fault =
  /** Forward, read the whole upstream response, then destroy the client socket: the server believes it answered. */
  | { kind: 'drop-response' }
  /** Forward, then write status, headers and half of the body, then destroy the client socket. */
  | { kind: 'cut-mid-body' }
  /** Answer without forwarding, as a load balancer with no healthy upstream would. */
  | { kind: 'status'; status: 502 | 503 | 504; retryAfter?: number }
  /** Forward, then hold the response back `ms` before writing it. */
  | { kind: 'delay'; ms: number };

export interface FaultInfo {
  /** 1 for the first request the proxy sees, then 2, 3, … */
  n: number;
  method: string;
  path: string;
  upstream: string;
}

export interface ProxyOptions {
  upstreams: string[];
  fault?: (info: FaultInfo) => Fault | undefined;
  /**
   * How an upstream is chosen: round robin (the default), or by a hash of a
   * query parameter, as nginx's `hash $arg_lp_affinity consistent` does
   * (requests without it go round robin).
   */
  balance?: 'round-robin' | { hashQuery: string };
}

export interface TestProxy {
  url: string;
  /** Requests seen so far. */
  requests(): number;
  /** Later requests go round-robin over these. */
  setUpstreams(urls: string[]): void;
  close(): Promise<void>;
}

interface UpstreamAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * A loopback reverse proxy that buffers each response whole, so it can lose
 * it after the upstream has sent it — the failure a cursor must survive.
 * Streaming responses (SSE) do not pass through it.
 */
export async function startProxy(opts: ProxyOptions): Promise<TestProxy> {
  let upstreams = [...opts.upstreams];
  let count = 0;
  let turn = 0;
  const sockets = new Set<Socket>();

  const server = createServer((req, res) => {
    const n = ++count;
    const upstream = upstreams[pick(req.url ?? '/')]!;
    const path = req.url ?? '/';
    const fault = opts.fault?.({ n, method: req.method ?? 'GET', path, upstream });
    void serve(req, res, upstream, fault).catch(() => {
      // An unreachable upstream looks like it does behind a real load balancer.
      if (res.headersSent || res.destroyed) res.destroy();
      else res.writeHead(502, { 'content-type': 'text/plain' }).end('Bad gateway');
    });
  });
  function pick(target: string): number {
    const balance = opts.balance;
    const value = typeof balance === 'object' ? new URL(target, 'http://x').searchParams.get(balance.hashQuery) : null;
    if (value === null) return turn++ % upstreams.length;
    let hash = 0;
    for (let i = 0; i < value.length; i++) hash = (Math.imul(hash, 31) + value.charCodeAt(i)) | 0;
    return (hash >>> 0) % upstreams.length;
  }

  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  async function serve(req: IncomingMessage, res: ServerResponse, upstream: string, fault: Fault | undefined): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (fault?.kind === 'status') {
      const headers: Record<string, string> = { 'content-type': 'text/plain' };
      if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
      res.writeHead(fault.status, headers).end(`Injected ${fault.status}`);
      return;
    }
    // The client giving up must reach the upstream, or the server would keep holding a poll nobody waits for.
    const controller = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    const answer = await forward(upstream, req, Buffer.concat(chunks), controller.signal);
    if (fault?.kind === 'drop-response') {
      res.socket?.destroy();
      return;
    }
    if (fault?.kind === 'delay') await new Promise((resolve) => setTimeout(resolve, fault.ms));
    if (res.destroyed) return;
    const headers: IncomingHttpHeaders = { ...answer.headers, 'content-length': String(answer.body.length) };
    // Hop-by-hop headers belong to the upstream connection, not this one.
    for (const name of ['transfer-encoding', 'connection', 'keep-alive']) delete headers[name];
    res.writeHead(answer.status, headers);
    if (fault?.kind === 'cut-mid-body') {
      res.write(answer.body.subarray(0, Math.floor(answer.body.length / 2)), () => res.socket?.destroy());
      return;
    }
    res.end(answer.body);
  }

  function forward(upstream: string, req: IncomingMessage, body: Buffer, signal: AbortSignal): Promise<UpstreamAnswer> {
    const target = new URL(req.url ?? '/', upstream);
    const headers: IncomingHttpHeaders = { ...req.headers, host: target.host, 'content-length': String(body.length) };
    for (const name of ['transfer-encoding', 'connection', 'keep-alive']) delete headers[name];
    return new Promise((resolve, reject) => {
      const outgoing = httpRequest(target, { method: req.method, headers, signal }, (incoming) => {
        const parts: Buffer[] = [];
        incoming.on('data', (part: Buffer) => parts.push(part));
        incoming.once('end', () => resolve({ status: incoming.statusCode ?? 502, headers: incoming.headers, body: Buffer.concat(parts) }));
        incoming.once('error', reject);
      });
      outgoing.once('error', reject);
      outgoing.end(body);
    });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => count,
    setUpstreams(urls) {
      upstreams = [...urls];
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
