/** What one client saw, against what was published on its topics. */
export interface ClientTally {
  client: number;
  subscriptions: number;
  published: number;
  delivered: number;
  /** Published, never delivered. */
  lost: number;
  /** Delivered more than once. */
  duplicated: number;
  /** Delivered after a later event of the same subscription. */
  reordered: number;
  /** Subscriptions that ended with an error (a fatal error ends delivery). */
  errors: number;
}

/**
 * Counts one client's deliveries. `received` holds, per subscription, the
 * event numbers in the order the application got them; every subscription
 * expects 1…`published` exactly once, in order.
 */
export function tallyClient(client: number, received: number[][], publishedPerSub: number, errors: number): ClientTally {
  let delivered = 0;
  let lost = 0;
  let duplicated = 0;
  let reordered = 0;
  for (const events of received) {
    const seen = new Set<number>();
    let highest = 0;
    for (const n of events) {
      delivered++;
      if (seen.has(n)) {
        duplicated++;
        continue;
      }
      seen.add(n);
      if (n < highest) reordered++;
      highest = Math.max(highest, n);
    }
    for (let n = 1; n <= publishedPerSub; n++) if (!seen.has(n)) lost++;
  }
  return { client, subscriptions: received.length, published: publishedPerSub * received.length, delivered, lost, duplicated, reordered, errors };
}

export function isClean(tally: ClientTally): boolean {
  return tally.lost === 0 && tally.duplicated === 0 && tally.reordered === 0 && tally.errors === 0 && tally.delivered === tally.published;
}

/** A plain-text table, one row per client and a total. */
export function formatTallies(tallies: ClientTally[]): string {
  const columns = ['client', 'subscriptions', 'published', 'delivered', 'lost', 'duplicated', 'reordered', 'errors'] as const;
  const total = tallies.reduce(
    (sum, t) => {
      for (const column of columns.slice(1)) sum[column] += t[column];
      return sum;
    },
    { client: 0, subscriptions: 0, published: 0, delivered: 0, lost: 0, duplicated: 0, reordered: 0, errors: 0 } as ClientTally,
  );
  const rows = [
    [...columns],
    ...tallies.map((t) => columns.map((column) => String(t[column]))),
    ['total', ...columns.slice(1).map((column) => String(total[column]))],
  ];
  const widths = columns.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n');
}
