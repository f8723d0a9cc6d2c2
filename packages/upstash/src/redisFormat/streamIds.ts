/**
 * Stream entry ids are `<ms>-<n>`: the time part keeps MINID retention
 * meaningful, and `n` numbers a topic's events 1, 2, 3… with no gaps, so a
 * reader can tell from ids alone whether anything between two events is
 * missing (Redis' own `<ms>-<seq>` ids cannot say that).
 * Event ids handed to subscribers are `<epoch>:<stream id>`; the epoch is
 * minted when a topic is first written, so after FLUSHALL the same stream id
 * can never be mistaken for the old one.
 */
export interface StreamPosition {
  /** Null only before the topic was ever written. */
  epoch: string | null;
  /** Stream entry id, `0-0` before the first entry. */
  id: string;
  /** Number of the event at `id` (0 before the first). */
  n: number;
}

export const ORIGIN = '0-0';

const EVENT_ID = /^([0-9a-z]{1,32}):(\d{1,16})-(\d{1,16})$/;

export function formatEventId(epoch: string, id: string): string {
  return `${epoch}:${id}`;
}

/** The position an event id names, or null when it cannot be an id of this log. */
export function parseEventId(eventId: string): StreamPosition | null {
  const match = EVENT_ID.exec(eventId);
  if (!match) return null;
  const n = Number(match[3]);
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(Number(match[2]))) return null;
  return { epoch: match[1]!, id: `${match[2]}-${match[3]}`, n };
}

/** The `n` of a stream entry id. */
export function numberOf(id: string): number {
  return Number(id.slice(id.indexOf('-') + 1));
}

/** Orders stream entry ids the way Redis does (by time part, then sequence part). */
export function compareStreamIds(a: string, b: string): number {
  const dashA = a.indexOf('-');
  const dashB = b.indexOf('-');
  const ms = Number(a.slice(0, dashA)) - Number(b.slice(0, dashB));
  if (ms !== 0) return Math.sign(ms);
  return Math.sign(Number(a.slice(dashA + 1)) - Number(b.slice(dashB + 1)));
}
