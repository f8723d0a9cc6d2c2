export { createPostgresEventLog, type PostgresEventLogOptions, type PostgresEventLogRetention } from './postgresEventLog';
export { DEFAULT_SCHEMA, schemaSql } from './schema';
