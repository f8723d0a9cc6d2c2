import { Redis } from 'ioredis';

/** The Redis the tests use: REDIS_URL, else the local default. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Whether tests that need Redis can run. Without Redis they skip with a
 * visible notice, except under CI=true, where a missing Redis fails the run.
 */
export async function redisAvailable(what: string): Promise<boolean> {
  try {
    await ping(new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null }));
    return true;
  } catch (cause) {
    const message = `${what}: no Redis at ${REDIS_URL} (${(cause as Error).message})`;
    if (process.env.CI === 'true') throw new Error(`${message}; CI=true requires Redis`);
    console.warn(`\n[SKIPPED] ${message}. Start redis-server or set REDIS_URL to run them.\n`);
    return false;
  }
}

/** Connects once and pings, without retrying; throws what went wrong. */
async function ping(probe: Redis): Promise<void> {
  probe.on('error', () => {});
  try {
    await probe.connect();
    await probe.ping();
  } finally {
    probe.disconnect();
  }
}

/** A key prefix no other run or test shares. */
export function uniquePrefix(label: string): string {
  return `trpc-longpoll-test:${label}:${process.pid}:${Math.random().toString(36).slice(2, 10)}:`;
}

/** Deletes every key under `prefix` (which must hold no glob characters). */
export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

export interface PrivateRedis {
  /** Unix socket path. */
  path: string;
  /** `kill -9` the server; with `appendOnly`, its data survives for `restart()`. */
  crash(): Promise<void>;
  /** Starts the server again on the same socket and data directory. */
  restart(): Promise<void>;
  /** Kills the server and removes its files. */
  stop(): Promise<void>;
}

/**
 * A throwaway redis-server on a Unix socket, for tests that must run
 * FLUSHALL or crash Redis without touching the shared Redis other tests
 * use. Null when redis-server is not installed.
 */
export async function startPrivateRedis(opts: { appendOnly?: boolean } = {}): Promise<PrivateRedis | null> {
  const { spawn } = await import('node:child_process');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'tlp-redis-'));
  const path = join(dir, 'redis.sock');
  const persistence = opts.appendOnly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  let child: import('node:child_process').ChildProcess | null = null;

  const kill = async () => {
    const running = child;
    child = null;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGKILL');
    await exited;
  };
  const launch = async (): Promise<boolean> => {
    child = spawn('redis-server', ['--port', '0', '--unixsocket', path, '--save', '', ...persistence, '--dir', dir], { stdio: 'ignore' });
    const spawned = await new Promise<boolean>((resolve) => {
      child!.once('spawn', () => resolve(true));
      child!.once('error', () => resolve(false));
    });
    if (!spawned) return false;
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        // Loading the append-only file answers LOADING until done.
        await ping(new Redis({ path, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null }));
        return true;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  };
  const stop = async () => {
    await kill();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (!(await launch())) {
      await stop();
      return null;
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    path,
    crash: kill,
    restart: async () => {
      if (!(await launch())) throw new Error('redis-server did not start again');
    },
    stop,
  };
}
