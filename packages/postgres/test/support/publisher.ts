/**
 * A child process of the concurrency test: subscribes to one topic, waits
 * for "go" on stdin, publishes from several concurrent chains, keeps reading
 * until it has seen `TOTAL` events, and prints what it published and saw.
 *
 * Environment: DATABASE_URL, LOG_SCHEMA, TOPIC, START (the head to subscribe
 * from), NAME, CHAINS, PER_CHAIN, TOTAL.
 */
import { createInterface } from 'node:readline';
import { createPostgresEventLog } from '@trpc-longpoll/postgres';

const env = process.env;
const log = createPostgresEventLog<Record<string, { by: string; chain: number; i: number }>>({ pg: env.DATABASE_URL!, schema: env.LOG_SCHEMA! });
const topic = env.TOPIC!;
const total = Number(env.TOTAL);
const name = env.NAME!;

const seen: { id: string; by: string; chain: number; i: number }[] = [];
const reading = (async () => {
  for await (const [id, data] of log.subscribe(topic, { lastEventId: env.START! })) {
    seen.push({ id, ...data });
    if (seen.length === total) return;
  }
})();

const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
await new Promise<void>((resolve) => lines.once('line', () => resolve()));

const published: { id: string; chain: number; i: number }[] = [];
await Promise.all(
  Array.from({ length: Number(env.CHAINS) }, async (_, chain) => {
    for (let i = 0; i < Number(env.PER_CHAIN); i++) published.push({ id: await log.publish(topic, { by: name, chain, i }), chain, i });
  }),
);
await reading;
process.stdout.write(`${JSON.stringify({ published, seen })}\n`);
lines.close();
await log.close();
