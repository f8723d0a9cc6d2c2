import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createPostgresEventLog } from '@trpc-longpoll/postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { DATABASE_URL, dropSchemas, postgresAvailable, uniqueSchema } from '@trpc-longpoll/e2e';

const available = await postgresAvailable('PostgreSQL concurrency test');
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const script = fileURLToPath(new URL('./support/publisher.ts', import.meta.url));
const schema = uniqueSchema('pgconc');

afterAll(async () => {
  if (available) await dropSchemas(schema);
});

interface Seen {
  id: string;
  by: string;
  chain: number;
  i: number;
}

interface ChildReport {
  published: { id: string; chain: number; i: number }[];
  seen: Seen[];
}

/** One publishing process: resolves `ready` once it is subscribed, `report` with what it published and saw. */
function startPublisher(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const ready = new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => line === 'ready' && resolve());
    child.once('exit', (code) => reject(new Error(`publisher ${env.NAME} exited with ${code}`)));
  });
  const report = new Promise<ChildReport>((resolve, reject) => {
    lines.on('line', (line) => line.startsWith('{') && resolve(JSON.parse(line) as ChildReport));
    child.once('exit', (code) => reject(new Error(`publisher ${env.NAME} exited with ${code} before reporting`)));
  });
  return { ready, report, go: () => child.stdin.write('go\n'), kill: () => child.kill('SIGKILL') };
}

const numberOf = (id: string) => Number(id.slice(id.indexOf(':') + 1));

/** Ids 1…total in order, nothing skipped or repeated, and each chain's events in the order it published them. */
function expectInOrder(seen: Seen[], total: number, who: string) {
  expect(seen.map((e) => numberOf(e.id)), who).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  const next = new Map<string, number>();
  for (const event of seen) {
    const chain = `${event.by}/${event.chain}`;
    expect(event.i, `${who}: ${chain}`).toBe(next.get(chain) ?? 0);
    next.set(chain, event.i + 1);
  }
}

describe.skipIf(!available)('concurrent publishers in several processes', () => {
  it('every subscriber, in every process, sees ids strictly in order, none skipped, counts exact', async () => {
    const processes = 4;
    const chains = 4;
    const perChain = 40;
    const total = processes * chains * perChain;
    const topic = 'race:one';
    const log = createPostgresEventLog<Record<string, Omit<Seen, 'id'>>>({ pg: DATABASE_URL, schema });
    const start = await log.head(topic);
    const local = (async () => {
      const seen: Seen[] = [];
      for await (const [id, data] of log.subscribe(topic, { lastEventId: start })) {
        seen.push({ id, ...data });
        if (seen.length === total) return seen;
      }
      return seen;
    })();

    const env = { DATABASE_URL, LOG_SCHEMA: schema, TOPIC: topic, START: start, CHAINS: String(chains), PER_CHAIN: String(perChain), TOTAL: String(total) };
    const children = Array.from({ length: processes }, (_, p) => startPublisher({ ...env, NAME: `p${p}` }));
    try {
      await Promise.all(children.map((child) => child.ready));
      // All at once: 16 chains in 4 processes contend for the topic's counter row.
      for (const child of children) child.go();
      const reports = await Promise.all(children.map((child) => child.report));

      const published = reports.flatMap((report) => report.published.map((p) => numberOf(p.id)));
      expect(published.sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      for (const [p, report] of reports.entries()) expectInOrder(report.seen, total, `subscriber in process p${p}`);
      expectInOrder(await local, total, 'subscriber in the test process');
    } finally {
      for (const child of children) child.kill();
      await log.close();
    }
  }, 60_000);
});
