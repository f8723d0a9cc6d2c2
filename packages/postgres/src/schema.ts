/**
 * The log's tables, in a schema of their own. `sql/schema.sql` is this text
 * for the default schema name (a test keeps the two equal).
 *
 * - `meta`: one row, the epoch every event id carries. TRUNCATE of either
 *   table, or DELETE from `topics`, mints a new one, so cursors from before
 *   are `reset` instead of silently meeting a restarted numbering.
 * - `topics`: one row per topic, the number of its newest event. Publishers
 *   update it in the statement that inserts the event, so the row lock orders
 *   them: event n+1 cannot be numbered before event n has committed.
 * - `events`: the retained events, numbered 1, 2, 3… per topic without gaps.
 */

export const DEFAULT_SCHEMA = 'trpc_longpoll';

/** Identifiers the log accepts as a schema name: they need no quoting and leave room for the channel suffixes in 63 bytes. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,47}$/;

export function checkSchemaName(schema: string): string {
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) {
    throw new TypeError(`createPostgresEventLog: schema must match ${SCHEMA_NAME} (lower case, digits, underscores, at most 48 characters); got ${JSON.stringify(schema)}`);
  }
  return schema;
}

/** The LISTEN/NOTIFY channels of a schema: event wake-ups and the cluster broadcast. */
export function channelsOf(schema: string): { events: string; cluster: string } {
  return { events: `${schema}:events`, cluster: `${schema}:cluster` };
}

const EPOCH_SQL = `substr(md5(random()::text || clock_timestamp()::text), 1, 12)`;

/** The DDL, idempotent: safe to run again on an existing schema. */
export function schemaSql(schema: string): string {
  const s = checkSchemaName(schema);
  return `-- @trpc-longpoll/postgres: the event log's tables (schema version 1).
-- Run once, e.g. as a migration, when the log is created with createSchema: false.
-- To use another schema name, replace every "${s}" below and pass the name as \`schema\`.

CREATE SCHEMA IF NOT EXISTS ${s};

-- The epoch every event id carries (a new one after TRUNCATE, see the triggers below).
CREATE TABLE IF NOT EXISTS ${s}.meta (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  epoch text NOT NULL DEFAULT ${EPOCH_SQL},
  schema_version integer NOT NULL DEFAULT 1
);
INSERT INTO ${s}.meta DEFAULT VALUES ON CONFLICT DO NOTHING;

-- One row per topic ever published: the number of its newest event. Never deleted by the log.
CREATE TABLE IF NOT EXISTS ${s}.topics (
  topic text PRIMARY KEY,
  last_n bigint NOT NULL
);

-- Retained events, numbered 1, 2, 3… per topic without gaps.
CREATE TABLE IF NOT EXISTS ${s}.events (
  topic text NOT NULL,
  n bigint NOT NULL,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  data text NOT NULL,
  PRIMARY KEY (topic, n)
);
-- For retention by age.
CREATE INDEX IF NOT EXISTS events_topic_at ON ${s}.events (topic, at);

-- Losing the history (TRUNCATE, or deleting topics, whose counters restart) gives ids a new epoch,
-- so a cursor from before is "reset", never mistaken for a position in the new numbering.
CREATE OR REPLACE FUNCTION ${s}.new_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE ${s}.meta SET epoch = ${EPOCH_SQL};
  RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS topics_truncated ON ${s}.topics;
CREATE TRIGGER topics_truncated AFTER TRUNCATE ON ${s}.topics FOR EACH STATEMENT EXECUTE FUNCTION ${s}.new_epoch();
DROP TRIGGER IF EXISTS topics_deleted ON ${s}.topics;
CREATE TRIGGER topics_deleted AFTER DELETE ON ${s}.topics FOR EACH STATEMENT EXECUTE FUNCTION ${s}.new_epoch();
DROP TRIGGER IF EXISTS events_truncated ON ${s}.events;
CREATE TRIGGER events_truncated AFTER TRUNCATE ON ${s}.events FOR EACH STATEMENT EXECUTE FUNCTION ${s}.new_epoch();
`;
}
