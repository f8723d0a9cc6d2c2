/**
 * The statements the log runs, one round trip each. A single statement is
 * one transaction and reads one snapshot, so what it reads (epoch, counter,
 * events) always belongs together.
 */

export interface Retention {
  /** Events kept per topic; null: no count limit. */
  maxEvents: number | null;
  /** Events older than this (ms, by the database clock) are dropped; null: no age limit. */
  maxAgeMs: number | null;
}

export interface Statement {
  name: string;
  text: string;
}

/** Prepared-statement names, one per distinct text, so two logs in one process never clash. */
const names = new Map<string, string>();
function prepared(text: string): Statement {
  let name = names.get(text);
  if (!name) names.set(text, (name = `trpc_longpoll_${names.size + 1}`));
  return { name, text };
}

/**
 * $1 topic, $2 data, $3 channel, $4 notification payload → (epoch, n).
 *
 * The upsert takes the topic row's lock until commit, so publishers of one
 * topic run one after the other: n is taken only after n - 1 is committed,
 * and no reader can see n without n - 1. Trimming rides along, so retention
 * costs no round trip; it only ever removes a prefix of the numbering.
 */
export function publishStatement(schema: string, retention: Retention): Statement {
  const trims: string[] = [];
  if (retention.maxEvents !== null) {
    trims.push(`by_count AS (DELETE FROM ${schema}.events WHERE topic = $1 AND n <= (SELECT last_n FROM counter) - ${retention.maxEvents})`);
  }
  if (retention.maxAgeMs !== null) {
    trims.push(`by_age AS (DELETE FROM ${schema}.events WHERE topic = $1 AND at < clock_timestamp() - interval '${retention.maxAgeMs} milliseconds')`);
  }
  return prepared(`WITH counter AS (
  INSERT INTO ${schema}.topics AS t (topic, last_n) VALUES ($1, 1)
  ON CONFLICT (topic) DO UPDATE SET last_n = t.last_n + 1
  RETURNING last_n
), inserted AS (
  INSERT INTO ${schema}.events (topic, n, data) SELECT $1, last_n, $2 FROM counter RETURNING n
)${trims.map((trim) => `, ${trim}`).join('')}
SELECT (SELECT epoch FROM ${schema}.meta) AS epoch, inserted.n::text AS n, pg_notify($3, $4) FROM inserted`);
}

/** $1 topic, $2 after n, $3 limit → rows (epoch, last_n, n, data); one row with null n when nothing follows. */
export function readStatement(schema: string): Statement {
  return prepared(`SELECT m.epoch, coalesce(t.last_n, 0)::text AS last_n, e.n::text AS n, e.data
FROM ${schema}.meta m
LEFT JOIN ${schema}.topics t ON t.topic = $1
LEFT JOIN LATERAL (SELECT n, data FROM ${schema}.events WHERE topic = $1 AND n > $2 ORDER BY n LIMIT $3) e ON true
ORDER BY e.n`);
}

/** $1 topic → (epoch, last_n): the id of the topic's newest event, or of its empty start. */
export function headStatement(schema: string): Statement {
  return prepared(`SELECT m.epoch, coalesce(t.last_n, 0)::text AS last_n FROM ${schema}.meta m LEFT JOIN ${schema}.topics t ON t.topic = $1`);
}
