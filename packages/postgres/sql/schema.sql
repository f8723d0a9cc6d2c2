-- @trpc-longpoll/postgres: the event log's tables (schema version 1).
-- Run once, e.g. as a migration, when the log is created with createSchema: false.
-- To use another schema name, replace every "trpc_longpoll" below and pass the name as `schema`.

CREATE SCHEMA IF NOT EXISTS trpc_longpoll;

-- The epoch every event id carries (a new one after TRUNCATE, see the triggers below).
CREATE TABLE IF NOT EXISTS trpc_longpoll.meta (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  epoch text NOT NULL DEFAULT substr(md5(random()::text || clock_timestamp()::text), 1, 12),
  schema_version integer NOT NULL DEFAULT 1
);
INSERT INTO trpc_longpoll.meta DEFAULT VALUES ON CONFLICT DO NOTHING;

-- One row per topic ever published: the number of its newest event. Never deleted by the log.
CREATE TABLE IF NOT EXISTS trpc_longpoll.topics (
  topic text PRIMARY KEY,
  last_n bigint NOT NULL
);

-- Retained events, numbered 1, 2, 3… per topic without gaps.
CREATE TABLE IF NOT EXISTS trpc_longpoll.events (
  topic text NOT NULL,
  n bigint NOT NULL,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  data text NOT NULL,
  PRIMARY KEY (topic, n)
);
-- For retention by age.
CREATE INDEX IF NOT EXISTS events_topic_at ON trpc_longpoll.events (topic, at);

-- Losing the history (TRUNCATE, or deleting topics, whose counters restart) gives ids a new epoch,
-- so a cursor from before is "reset", never mistaken for a position in the new numbering.
CREATE OR REPLACE FUNCTION trpc_longpoll.new_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE trpc_longpoll.meta SET epoch = substr(md5(random()::text || clock_timestamp()::text), 1, 12);
  RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS topics_truncated ON trpc_longpoll.topics;
CREATE TRIGGER topics_truncated AFTER TRUNCATE ON trpc_longpoll.topics FOR EACH STATEMENT EXECUTE FUNCTION trpc_longpoll.new_epoch();
DROP TRIGGER IF EXISTS topics_deleted ON trpc_longpoll.topics;
CREATE TRIGGER topics_deleted AFTER DELETE ON trpc_longpoll.topics FOR EACH STATEMENT EXECUTE FUNCTION trpc_longpoll.new_epoch();
DROP TRIGGER IF EXISTS events_truncated ON trpc_longpoll.events;
CREATE TRIGGER events_truncated AFTER TRUNCATE ON trpc_longpoll.events FOR EACH STATEMENT EXECUTE FUNCTION trpc_longpoll.new_epoch();
