import { request } from 'node:http';
import { createTRPCClient, httpBatchLink } from '@trpc/client';
import superjson from 'superjson';
import type { AppRouter } from '../src/server/router';

export interface PollRecord {
  sentAt: number;
  answeredAt?: number;
  status?: number;
  failed?: string;
  failedAt?: number;
}

/**
 * A `fetch` for `longPollLink` that records every poll (a POST to the
 * endpoint itself): when it went out, when and how it was answered, or how
 * it failed. The link's own callbacks say what it made of them.
 */
export function pollWatch(endpoint: string) {
  const polls: PollRecord[] = [];
  const watched = async (input: string, init: RequestInit): Promise<Response> => {
    if (init.method !== 'POST' || new URL(input).pathname !== endpoint) return fetch(input, init);
    const poll: PollRecord = { sentAt: Date.now() };
    polls.push(poll);
    try {
      const response = await fetch(input, init);
      poll.status = response.status;
      poll.answeredAt = Date.now();
      return response;
    } catch (cause) {
      poll.failed = String(cause);
      poll.failedAt = Date.now();
      throw cause;
    }
  };
  return {
    fetch: watched,
    polls,
    /** Polls that failed, or were answered with anything but 200, at or after `since`. */
    failedSince: (since: number) =>
      polls.filter((p) => (p.failedAt !== undefined && p.failedAt >= since) || (p.answeredAt !== undefined && p.answeredAt >= since && p.status !== 200)),
    /** The poll in flight, if one is: sent, not answered, not failed. */
    held: () => polls.find((p) => p.answeredAt === undefined && p.failed === undefined),
  };
}

/** A plain tRPC client for queries and mutations, as another user of the app would be. */
export function queries(url: string) {
  return createTRPCClient<AppRouter>({ links: [httpBatchLink({ url, transformer: superjson })] });
}

/**
 * A POST on a connection of its own, as a hostile client sends it: the server may answer before the
 * body is all sent and drop the connection, which must not touch anyone else's request.
 */
export function rawPost(url: string, body: string, opts: { chunked?: boolean } = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': 'application/json' };
    if (!opts.chunked) headers['content-length'] = Buffer.byteLength(body);
    const req = request(url, { method: 'POST', agent: false, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    // Writing into a connection the server already answered and closed fails here; the answer is what counts.
    req.on('error', (cause) => setTimeout(() => reject(cause), 1_000));
    for (let offset = 0; offset < body.length; offset += 64 * 1024) req.write(body.slice(offset, offset + 64 * 1024));
    req.end();
  });
}

/** A poll body of 2 MiB: over both Next's default `sizeLimit` and the handler's default `maxBodyBytes`. */
export const HUGE_POLL = JSON.stringify({ v: 1, client: 'c'.repeat(20), poll: 1, subscriptions: [], pad: 'x'.repeat(2 * 1024 * 1024) });

/** A well-formed poll whose one subscription's input is nested `depth` levels deep. */
export function deepInputPoll(depth: number): string {
  let input: unknown = 'bottom';
  for (let i = 0; i < depth; i++) input = { deeper: input };
  return JSON.stringify({ v: 1, client: 'nextjs-hostile-client', poll: 1, hold: 0, subscriptions: [{ key: 'k', path: 'onMessage', input: { json: input } }] });
}
