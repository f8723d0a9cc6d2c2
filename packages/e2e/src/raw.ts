import { PROTOCOL_VERSION, randomId, type PollRequest, type PollSubscription } from '@trpc-longpoll/protocol';

/** A poll answer as a test reads it. */
export interface RawAnswer {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body, or `undefined` when it is not JSON. */
  json: any;
}

/** Anything that answers a Fetch request: `fetch` itself, or a `createLongPollHandler` handler. */
export type FetchLike = (req: Request) => Promise<Response>;

/** A fresh client id, made as the link makes its own. */
export function randomClientId(): string {
  return randomId();
}

/**
 * Hand-crafted polls, as an attacker or a fuzzer writes them, for driving a
 * handler without the client link (which would never send most of them).
 */
export function rawPoller(target: FetchLike, url: string, init: { headers?: Record<string, string> } = {}) {
  async function send(body: unknown, extra: RequestInit = {}): Promise<RawAnswer> {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    const res = await target(
      new Request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...init.headers, ...(extra.headers as Record<string, string> | undefined) },
        body: text,
        ...(extra.signal ? { signal: extra.signal } : {}),
      }),
    );
    const answer = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(answer);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text: answer, json };
  }
  return {
    send,
    /** A well-formed poll; `fields` overrides any part of it. */
    poll(client: string, poll: number, subscriptions: PollSubscription[], fields: Partial<PollRequest> = {}, extra?: RequestInit) {
      return send({ v: PROTOCOL_VERSION, client, poll, hold: 0, subscriptions, ...fields }, extra);
    },
  };
}

/** Whether an answer shows a stack trace or server file paths anywhere. */
export function containsStack(text: string): boolean {
  return /"stack"\s*:|\n\s+at |node:internal|\/node_modules\//.test(text);
}
