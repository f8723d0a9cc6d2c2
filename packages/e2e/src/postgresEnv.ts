import pg from 'pg';

/** The PostgreSQL the tests use: DATABASE_URL, else the local default (database `test`). */
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Whether tests that need PostgreSQL can run. Without it they skip with a
 * visible notice, except under CI=true, where a missing database fails the run.
 */
export async function postgresAvailable(what: string): Promise<boolean> {
  const probe = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2_000 });
  probe.on('error', () => {});
  try {
    await probe.connect();
    await probe.query('SELECT 1');
    return true;
  } catch (cause) {
    const message = `${what}: no PostgreSQL at ${DATABASE_URL} (${(cause as Error).message})`;
    if (process.env.CI === 'true') throw new Error(`${message}; CI=true requires PostgreSQL`);
    console.warn(`\n[SKIPPED] ${message}. Start PostgreSQL or set DATABASE_URL to run them.\n`);
    return false;
  } finally {
    await probe.end().catch(() => {});
  }
}

/** A schema name no other run or test shares (what `createPostgresEventLog({ schema })` accepts). */
export function uniqueSchema(label: string): string {
  return `tlp_${label}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 48);
}

/** Runs one statement on a short-lived connection. */
export async function sql<R extends Record<string, unknown> = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Drops the given schemas and everything in them (names from `uniqueSchema`, never user input). */
export async function dropSchemas(...schemas: string[]): Promise<void> {
  for (const schema of schemas) await sql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
}

export interface PrivatePostgres {
  /** Connection string of the private server's `postgres` database. */
  url: string;
  /** A real restart (`pg_ctl restart`, fast mode: sessions are ended, data kept). */
  restart(): Promise<void>;
  /** Stops the server and removes its files. */
  stop(): Promise<void>;
}

/** The binaries of the newest installed PostgreSQL (Debian puts them outside PATH). */
async function postgresBin(): Promise<string | null> {
  const { readdirSync, existsSync } = await import('node:fs');
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).filter((v) => existsSync(`${root}/${v}/bin/initdb`)).sort((a, b) => Number(b) - Number(a));
  return versions[0] ? `${root}/${versions[0]}/bin` : null;
}

/**
 * A throwaway PostgreSQL server in a temporary directory on its own port,
 * for tests that restart the server without disturbing the shared one other
 * tests use. PostgreSQL refuses to run as root, so as root it runs as the
 * `postgres` user. Null when PostgreSQL is not installed.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres | null> {
  const bin = await postgresBin();
  if (!bin) return null;
  const { execFile } = await import('node:child_process');
  const { chmodSync, chownSync, mkdtempSync, rmSync } = await import('node:fs');
  const { createServer } = await import('node:net');
  const { tmpdir, userInfo } = await import('node:os');
  const { join } = await import('node:path');
  const { promisify } = await import('node:util');
  const run = promisify(execFile);
  const asRoot = userInfo().uid === 0;
  const dir = mkdtempSync(join(tmpdir(), 'tlp-pg-'));
  chmodSync(dir, 0o777);
  if (asRoot) {
    const ids = await run('id', ['-u', 'postgres']).then(async ({ stdout }) => ({ uid: Number(stdout), gid: Number((await run('id', ['-g', 'postgres'])).stdout) }));
    chownSync(dir, ids.uid, ids.gid);
  }
  const pg = (tool: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', `${bin}/${tool}`, ...args], { cwd: dir }) : run(`${bin}/${tool}`, args, { cwd: dir });
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as import('node:net').AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const data = join(dir, 'data');
  const ctl = (...args: string[]) => pg('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '30', ...args]);
  const options = ['-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`];
  const stop = async () => {
    await ctl('-m', 'immediate', 'stop').catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await pg('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
    await ctl(...options, 'start');
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    restart: async () => {
      await ctl('-m', 'fast', ...options, 'restart');
    },
    stop,
  };
}
