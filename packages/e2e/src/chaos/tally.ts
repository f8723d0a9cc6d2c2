/**
 * How a subscription of the soak is made, which decides what it must get:
 * - `tracked`: from the genesis event every topic starts with, so 1…published;
 * - `from-now`: no `lastEventId`, so everything published after its `onStarted`;
 * - `untracked`: no ids, through a balancer that hashes on `lp_affinity`; when the
 *   instance running it dies it may end with a typed cursor error and is subscribed
 *   again, so each stretch between errors must be whole on its own.
 */
export type SubscriptionKind = 'tracked' | 'from-now' | 'untracked';

/** One subscribe call: what it got, and the first event it was owed. */
export interface Segment {
  /** The first event number published after `onStarted` (1 when it started before any). */
  due: number;
  events: number[];
  /** Ended with an error; for untracked subscriptions a typed cursor error (`resume-lost`, `no-affinity`) is allowed. */
  error?: { typed: boolean };
}

export interface SubscriptionRecord {
  kind: SubscriptionKind;
  segments: Segment[];
}

/** What one client saw, against what was published on its topics. */
export interface ClientTally {
  client: string;
  subscriptions: number;
  /** Events the client was owed: from each segment's due event to the end (or to its typed error). */
  published: number;
  delivered: number;
  /** Owed, never delivered. */
  lost: number;
  /** Delivered more than once. */
  duplicated: number;
  /** Delivered after a later event of the same subscription. */
  reordered: number;
  /** Subscriptions that ended with an error they should not have. */
  errors: number;
  /** Untracked subscriptions told, with a typed cursor error, that their instance went away. */
  told: number;
}

/** Counts one segment's deliveries against what it was owed. */
function tallySegment(segment: Segment, published: number, tally: ClientTally): void {
  const seen = new Set<number>();
  let highest = 0;
  for (const n of segment.events) {
    tally.delivered++;
    if (seen.has(n)) {
      tally.duplicated++;
      continue;
    }
    seen.add(n);
    if (n < highest) tally.reordered++;
    highest = Math.max(highest, n);
  }
  // A segment ended by a typed error owes only what came before it; any other owes up to the end.
  const end = segment.error?.typed ? highest : published;
  for (let n = segment.due; n <= end; n++) {
    tally.published++;
    if (!seen.has(n)) tally.lost++;
  }
  // Anything delivered from before its due event counts as delivered but was not owed.
  for (const n of seen) if (n < segment.due) tally.published++;
}

/** Counts one client's deliveries, subscription by subscription and segment by segment. */
export function tallyClient(client: string, subscriptions: SubscriptionRecord[], published: number): ClientTally {
  const tally: ClientTally = { client, subscriptions: subscriptions.length, published: 0, delivered: 0, lost: 0, duplicated: 0, reordered: 0, errors: 0, told: 0 };
  for (const { kind, segments } of subscriptions) {
    for (const segment of segments) {
      tallySegment(segment, published, tally);
      if (!segment.error) continue;
      if (kind === 'untracked' && segment.error.typed) tally.told++;
      else tally.errors++;
    }
  }
  return tally;
}

export function isClean(tally: ClientTally): boolean {
  return tally.lost === 0 && tally.duplicated === 0 && tally.reordered === 0 && tally.errors === 0 && tally.delivered === tally.published;
}

/** A plain-text table, one row per client and a total. */
export function formatTallies(tallies: ClientTally[]): string {
  const columns = ['client', 'subscriptions', 'published', 'delivered', 'lost', 'duplicated', 'reordered', 'errors', 'told'] as const;
  const total: ClientTally = { client: 'total', subscriptions: 0, published: 0, delivered: 0, lost: 0, duplicated: 0, reordered: 0, errors: 0, told: 0 };
  for (const t of tallies) for (const column of columns.slice(1)) (total[column] as number) += t[column] as number;
  const rows = [[...columns], ...[...tallies, total].map((t) => columns.map((column) => String(t[column])))];
  const widths = columns.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n');
}
