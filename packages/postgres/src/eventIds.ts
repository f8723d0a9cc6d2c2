/**
 * Event ids are `<epoch>:<n>`: the schema's epoch, then the event's number in
 * its topic (1, 2, 3… without gaps; 0 is a topic's empty start). Gapless
 * numbers let a reader tell from ids alone whether anything between two
 * events is missing; the epoch tells this log's history from any other.
 */
export interface Position {
  epoch: string;
  n: number;
}

const EVENT_ID = /^([0-9a-z]{1,32}):(\d{1,16})$/;

export function formatEventId(position: Position): string {
  return `${position.epoch}:${position.n}`;
}

/** The position an event id names, or null when it cannot be an id of this log. */
export function parseEventId(eventId: string): Position | null {
  const match = EVENT_ID.exec(eventId);
  if (!match) return null;
  const n = Number(match[2]);
  return Number.isSafeInteger(n) ? { epoch: match[1]!, n } : null;
}
