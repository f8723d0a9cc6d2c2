import pg from 'pg';
import { schemaSql } from './schema';

/** What the log queries through: a pool, or one client (queries queue on it). */
export type Queryable = Pick<pg.Pool, 'query'>;

export interface Connection {
  client: Queryable;
  /** Settings for the LISTEN connection. */
  listenConfig: pg.ClientConfig;
  /** Resolves once the schema is there (created on first use unless `createSchema: false`). */
  ready(): Promise<void>;
  /** Ends the pool if the log made it. */
  close(): Promise<void>;
}

interface ConnectOptions {
  pg: pg.Pool | pg.Client | string | pg.PoolConfig;
  listen?: string | pg.ClientConfig;
  createSchema?: boolean;
}

function isQueryable(value: unknown): value is pg.Pool | pg.Client {
  return typeof value === 'object' && value !== null && typeof (value as { query?: unknown }).query === 'function';
}

/** Connection settings of a pool or client someone else made, as far as they can be read. */
function settingsOf(given: pg.Pool | pg.Client): pg.ClientConfig {
  if ('options' in given && typeof given.options === 'object') return given.options;
  const client = given as pg.Client;
  return { host: client.host, port: client.port, user: client.user, database: client.database, password: client.password, ssl: client.ssl };
}

/** Connection failures worth retrying a read through: the server restarting or the connection killed, not a wrong query or password. */
export function isTransient(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    // Class 08 (connection exception), 57P01-57P03 (admin/crash shutdown, cannot connect now), 53300 (too many connections).
    if (code.startsWith('08') || /^57P0[123]$/.test(code) || code === '53300') return true;
    if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'].includes(code)) return true;
  }
  return typeof message === 'string' && /Connection terminated|connection error|timeout exceeded when trying to connect|Client was closed/i.test(message);
}

/** Serializes schema creation across processes that start at once (CREATE … IF NOT EXISTS can still race on the catalogs). */
async function createSchema(client: Queryable, schema: string): Promise<void> {
  const probe = await client.query(`SELECT to_regclass($1) AS meta, to_regclass($2) AS events`, [`${schema}.meta`, `${schema}.events`]);
  if (probe.rows[0]?.meta && probe.rows[0]?.events) return;
  // One statement string: with a pool, BEGIN … COMMIT must run on one connection, and a multi-statement query is one implicit transaction.
  await client.query(`SELECT pg_advisory_xact_lock(hashtext('trpc-longpoll schema ' || '${schema}'));\n${schemaSql(schema)}`);
}

export function connect(opts: ConnectOptions, schema: string): Connection {
  const owned = !isQueryable(opts.pg);
  let pool: pg.Pool | null = null;
  let client: Queryable;
  if (isQueryable(opts.pg)) {
    client = opts.pg;
  } else {
    pool = new pg.Pool(typeof opts.pg === 'string' ? { connectionString: opts.pg } : opts.pg);
    // An idle client whose connection dies reports here; the pool drops it and the next query opens another.
    pool.on('error', () => {});
    client = pool;
  }
  const listenConfig =
    opts.listen === undefined ? settingsOf(isQueryable(opts.pg) ? opts.pg : pool!) : typeof opts.listen === 'string' ? { connectionString: opts.listen } : opts.listen;

  let schemaReady: Promise<void> | null = null;
  return {
    client,
    listenConfig,
    ready() {
      if (opts.createSchema === false) return Promise.resolve();
      schemaReady ??= createSchema(client, schema).catch((error: unknown) => {
        // Retried by the next call: the database may just be starting.
        schemaReady = null;
        throw error;
      });
      return schemaReady;
    },
    async close() {
      if (owned) await pool?.end();
    },
  };
}
