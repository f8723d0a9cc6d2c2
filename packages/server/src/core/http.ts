import type { TRPCRequestInfo } from '@trpc/server/http';

/*
 * The HTTP rules every adapter shares, with no I/O of their own: adapters
 * hand over the request as they got it, and these decide what is a poll.
 * Nothing here throws on client input.
 */

/** A poll body as the host has it. */
export type PollBody =
  /** Bytes still arriving: read here, with the size limit and the deadline. */
  | { stream: AsyncIterable<Uint8Array | string> }
  /** Text the host already read (API Gateway, a framework's raw-body option). */
  | { text: string }
  /** A value a framework's body parser already made (`express.json()`, Next's API routes). */
  | { parsed: unknown };

/** What an adapter hands the core: the request, translated but unchecked. */
export interface HttpRequest {
  method: string;
  /** The request target as received: a path with its query (`/trpc?x=1`) or an absolute URL. */
  url: string;
  /** The Host header, to make a path absolute; `undefined` when `url` is absolute or there is none. */
  host?: string | undefined;
  /** `http` or `https`, for the URL given to `createContext`. Default `http`. */
  protocol?: string;
  /** A header by its lower-case name. */
  header(name: string): string | undefined;
  body: PollBody;
  /** Aborts when the client goes away. */
  signal: AbortSignal;
  /** The adapter's native request, passed to `onError`. */
  req: unknown;
  /** Calls the user's `createContext` with the adapter's own argument shape. */
  createContext: (info: TRPCRequestInfo) => unknown;
}

/** A response-like the adapter writes out. */
export interface CoreResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The body was not read to its end: close the connection after answering (Node adapters). */
  close?: true;
}

/** The pathname of a request target, or null when it is not a URL at all (`//[/`). */
export function pathnameOf(target: string): string | null {
  try {
    return new URL(target, 'http://localhost').pathname;
  } catch {
    return null;
  }
}

/** The request's URL for `createContext`, or null when the target or the host cannot make one (`Host: [`). */
export function requestUrl(target: string, host: string | undefined, protocol = 'http'): URL | null {
  try {
    return new URL(target, `${protocol}://${host ?? 'localhost'}`);
  } catch {
    return null;
  }
}

/**
 * Only JSON is a poll. Other types — `text/plain`, forms — are what a page on
 * another site can send without a CORS preflight, so serving them would let
 * it start subscriptions with a visitor's cookies (tRPC refuses them too).
 */
export function isJsonContentType(value: string | undefined): boolean {
  if (!value) return false;
  const semicolon = value.indexOf(';');
  const type = (semicolon < 0 ? value : value.slice(0, semicolon)).trim().toLowerCase();
  return type === 'application/json';
}

export class BodyError extends Error {
  constructor(
    readonly kind: 'too-large' | 'timeout' | 'unreadable',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads UTF-8 chunks until the end, the size limit or the deadline, whichever
 * comes first. At a limit or the deadline the stream is left where it is: the
 * answer goes out with `close`, so the connection (and what is still on it) goes.
 */
export async function readBody(stream: AsyncIterable<Uint8Array | string>, limit: number, timeoutMs: number): Promise<string> {
  const iterator = stream[Symbol.asyncIterator]();
  const decoder = new TextDecoder();
  let size = 0;
  let text = '';
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BodyError('timeout', `The poll body did not arrive within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    for (;;) {
      const next = iterator.next();
      // A read still pending when the deadline passes fails later, when the connection closes: nobody waits for it then.
      next.catch(() => {});
      let step: IteratorResult<Uint8Array | string>;
      try {
        step = await Promise.race([next, deadline]);
      } catch (cause) {
        if (cause instanceof BodyError) throw cause;
        throw new BodyError('unreadable', 'The poll body could not be read');
      }
      if (step.done) return text + decoder.decode();
      const bytes = typeof step.value === 'string' ? new TextEncoder().encode(step.value) : step.value;
      size += bytes.byteLength;
      if (size > limit) throw new BodyError('too-large', `The poll body is larger than ${limit} bytes`);
      text += decoder.decode(bytes, { stream: true });
    }
  } finally {
    clearTimeout(timer);
  }
}
