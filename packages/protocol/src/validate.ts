import type {
  Cursor,
  PollRequest,
  PollResponse,
  PollSubscription,
  SubscriptionResult,
  WireEnd,
  WireEvent,
} from './types';
import { CURSOR_ERROR_REASONS, PROTOCOL_VERSION } from './types';

/** Why a message was refused; the message names the offending field (`subscriptions[0].key …`). */
export class ProtocolError extends Error {
  constructor(
    message: string,
    readonly kind: 'invalid' | 'version' | 'too-many-subscriptions' = 'invalid',
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export interface RequestLimits {
  /** Most subscriptions one poll may carry. */
  maxSubscriptions: number;
}

const MAX_ID = 256;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(message: string): never {
  throw new ProtocolError(message);
}

function shortString(value: unknown, field: string, max = MAX_ID): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    fail(`${field} must be a non-empty string of at most ${max} characters`);
  }
  return value;
}

function counter(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(`${field} must be a non-negative integer`);
  }
  return value;
}

function checkVersion(value: Record<string, unknown>, what: string): void {
  if (value.v !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      `Unsupported ${what} version ${JSON.stringify(value.v)}; this side speaks trpc-longpoll v${PROTOCOL_VERSION}`,
      'version',
    );
  }
}

function parseCursor(value: unknown, field: string): Cursor {
  if (!isRecord(value)) fail(`${field} must be an object`);
  const cursor: Cursor = {
    run: shortString(value.run, `${field}.run`),
    seq: counter(value.seq, `${field}.seq`),
  };
  if (value.lastEventId !== undefined) {
    cursor.lastEventId = shortString(value.lastEventId, `${field}.lastEventId`, 1024);
  }
  if (value.restart !== undefined) {
    if (value.restart !== true) fail(`${field}.restart must be true when present`);
    cursor.restart = true;
  }
  return cursor;
}

function parseSubscription(value: unknown, field: string): PollSubscription {
  if (!isRecord(value)) fail(`${field} must be an object`);
  const sub: PollSubscription = {
    key: shortString(value.key, `${field}.key`, 64),
    path: shortString(value.path, `${field}.path`, 512),
  };
  if ('input' in value && value.input !== undefined) sub.input = value.input;
  if (value.cursor !== undefined) sub.cursor = parseCursor(value.cursor, `${field}.cursor`);
  return sub;
}

function parseConnectionParams(value: unknown): Record<string, string> | null {
  if (value === undefined || value === null) return null;
  if (!isRecord(value)) fail('connectionParams must be an object of strings');
  for (const [key, param] of Object.entries(value)) {
    if (typeof param !== 'string') fail(`connectionParams.${key} must be a string`);
  }
  return value as Record<string, string>;
}

/** Checks an untrusted poll body. Throws `ProtocolError` with a message fit for the client. */
export function parsePollRequest(value: unknown, limits: RequestLimits): PollRequest {
  if (!isRecord(value)) fail('The poll body must be a JSON object');
  checkVersion(value, 'protocol');
  const subs = value.subscriptions;
  if (!Array.isArray(subs)) fail('subscriptions must be an array');
  if (subs.length > limits.maxSubscriptions) {
    throw new ProtocolError(
      `A poll may carry at most ${limits.maxSubscriptions} subscriptions; this one has ${subs.length}`,
      'too-many-subscriptions',
    );
  }
  const request: PollRequest = {
    v: PROTOCOL_VERSION,
    client: shortString(value.client, 'client', 64),
    poll: counter(value.poll, 'poll'),
    connectionParams: parseConnectionParams(value.connectionParams),
    subscriptions: [],
  };
  if (value.hold !== undefined) request.hold = counter(value.hold, 'hold');
  if (value.minor !== undefined) request.minor = counter(value.minor, 'minor');
  if (value.prev !== undefined) request.prev = shortString(value.prev, 'prev');
  const seen = new Set<string>();
  subs.forEach((sub, i) => {
    const parsed = parseSubscription(sub, `subscriptions[${i}]`);
    if (seen.has(parsed.key)) fail(`subscriptions[${i}].key ${JSON.stringify(parsed.key)} is repeated`);
    seen.add(parsed.key);
    request.subscriptions.push(parsed);
  });
  return request;
}

function parseEvent(value: unknown, field: string): WireEvent {
  if (!isRecord(value)) fail(`${field} must be an object`);
  const event: WireEvent = { seq: counter(value.seq, `${field}.seq`) };
  if (value.id !== undefined) event.id = shortString(value.id, `${field}.id`, 1024);
  if (value.bookmark === true) {
    if (event.id === undefined) fail(`${field} is a bookmark without an id`);
    event.bookmark = true;
  } else if ('data' in value) event.data = value.data;
  return event;
}

function parseEnd(value: unknown, field: string): WireEnd {
  if (!isRecord(value)) fail(`${field} must be an object`);
  if (value.type === 'stopped') return { type: 'stopped' };
  if (value.type === 'error') {
    const end: WireEnd = { type: 'error', error: value.error };
    if (value.reason !== undefined) {
      if (!CURSOR_ERROR_REASONS.includes(value.reason as never)) fail(`${field}.reason is unknown`);
      end.reason = value.reason as WireEnd & { type: 'error' } extends { reason?: infer R } ? R : never;
    }
    if (value.retryAfterMs !== undefined) end.retryAfterMs = counter(value.retryAfterMs, `${field}.retryAfterMs`);
    return end;
  }
  fail(`${field}.type must be "stopped" or "error"`);
}

function parseResult(value: unknown, field: string): SubscriptionResult {
  if (!isRecord(value)) fail(`${field} must be an object`);
  const result: SubscriptionResult = {};
  if (value.run !== undefined) result.run = shortString(value.run, `${field}.run`);
  if (value.events !== undefined) {
    if (!Array.isArray(value.events)) fail(`${field}.events must be an array`);
    result.events = value.events.map((event, i) => parseEvent(event, `${field}.events[${i}]`));
  }
  if (value.end !== undefined) result.end = parseEnd(value.end, `${field}.end`);
  return result;
}

/** Checks a server's answer, so a proxy's stray 200 page becomes a retry, not a crash. */
export function parsePollResponse(value: unknown): PollResponse {
  if (!isRecord(value)) fail('The poll response must be a JSON object');
  checkVersion(value, 'protocol');
  if (!isRecord(value.results)) fail('results must be an object');
  const results: Record<string, SubscriptionResult> = {};
  for (const [key, result] of Object.entries(value.results)) {
    results[key] = parseResult(result, `results.${key}`);
  }
  const response: PollResponse = { v: PROTOCOL_VERSION, results };
  if (value.more === true) response.more = true;
  if (value.stale === true) response.stale = true;
  if (value.via !== undefined) response.via = shortString(value.via, 'via');
  return response;
}

/** Reads the tRPC error shape out of a poll-wide error body, if it is one. */
export function readPollError(value: unknown): { error: unknown } | null {
  if (isRecord(value) && value.v === PROTOCOL_VERSION && 'error' in value) return { error: value.error };
  if (isRecord(value) && isRecord(value.error)) return { error: value.error };
  return null;
}
