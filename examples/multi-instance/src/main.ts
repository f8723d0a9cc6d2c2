/**
 * Two instances of a chat service share an event log (Redis Streams, or
 * PostgreSQL with `--log postgres`) behind a round-robin balancer with no sticky sessions. Three clients follow a room
 * while messages are sent through both instances; then one instance is
 * killed with SIGKILL mid-stream and the clients carry on through the other.
 * At the end every client must hold every message exactly once, in order.
 *
 * Run: `pnpm --filter @trpc-longpoll/example-multi-instance start [--log redis|postgres]`
 * (EVENT_LOG works too; needs Redis at REDIS_URL, default redis://127.0.0.1:6379,
 * or PostgreSQL at DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createTRPCClient, httpBatchLink, splitLink } from '@trpc/client';
import { longPollLink } from '@trpc-longpoll/client';
import superjson from 'superjson';
import { startBalancer } from './balancer';
import { chosenLog, logBackend, runNamespace } from './logs';
import type { ChatMessage, ChatRouter } from './router';

const KIND = chosenLog();
const backend = logBackend(KIND, runNamespace(KIND));
const ROOM = 'lobby';
const TIMEOUT_MS = 20_000;

const say = (who: string, text: string) => console.log(`${new Date().toISOString().slice(11, 23)}  ${who.padEnd(9)} ${text}`);

interface Instance {
  name: string;
  url: string;
  child: ChildProcess;
}

async function startInstance(name: string): Promise<Instance> {
  // `--import tsx` keeps the instance a single process, so SIGKILL really kills the server (tsx's CLI would fork a child).
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./server.ts', import.meta.url))], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    env: { ...process.env, EVENT_LOG: KIND, LOG_NAMESPACE: backend.namespace, INSTANCE: name, EXIT_WITH_STDIN: '1' },
    // The instance exits when this pipe closes, so it never outlives this process.
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`instance ${name} did not start`)), TIMEOUT_MS);
    child.once('exit', (code) => reject(new Error(`instance ${name} exited (${code}) before listening`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { listening: string }).listening);
    });
  });
  return { name, url, child };
}

function stopInstance(instance: Instance, signal: NodeJS.Signals): Promise<void> {
  const { child } = instance;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

function createClient(url: string) {
  return createTRPCClient<ChatRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: longPollLink({ url, transformer: superjson, holdMs: 5_000, retry: { initialDelayMs: 100, maxDelayMs: 1_000 } }),
        false: httpBatchLink({ url, transformer: superjson }),
      }),
    ],
  });
}

async function waitFor(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + TIMEOUT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function main(): Promise<void> {
  const problem = await backend.check();
  if (problem) {
    console.error(problem);
    process.exitCode = 1;
    return;
  }
  say('log', `the shared event log is in ${backend.where}`);

  const instances = await Promise.all([startInstance('a'), startInstance('b')]);
  for (const instance of instances) say(`server ${instance.name}`, `listening on ${instance.url}`);
  let shuttingDown = false;
  const balancer = await startBalancer(
    instances.map((i) => i.url),
    { onDown: (url) => shuttingDown || say('balancer', `${url} refused a connection: out of rotation`) },
  );
  say('balancer', `round-robin, no sticky sessions, on ${balancer.url}`);

  const readers = ['ann', 'bob', 'cy'];
  const received = new Map<string, { id: string; data: ChatMessage }[]>(readers.map((name) => [name, []]));
  const errors: string[] = [];
  const subscriptions = await Promise.all(
    readers.map(async (name) => {
      const client = createClient(balancer.url);
      // Start from the log's head: whichever instance runs the subscription, it starts here.
      const lastEventId = await client.head.query({ room: ROOM });
      return client.onMessage.subscribe(
        { room: ROOM, lastEventId },
        {
          onData: ({ id, data }) => {
            received.get(name)!.push({ id, data });
            say(`client ${name}`, `← ${data.author}: ${data.text}  (stored via ${data.via}, id ${id})`);
          },
          onError: (error) => errors.push(`${name}: ${error.message}`),
        },
      );
    }),
  );

  // Publishers on both instances: each sender talks to one instance directly, so neither depends on how the
  // balancer's rotation happens to interleave with the clients' polls.
  const senders = instances.map((instance) => createClient(instance.url));
  const send = async (text: string, sender: (typeof senders)[number]) => {
    const { via } = await sender.send.mutate({ room: ROOM, author: 'dora', text });
    say('sender', `→ "${text}" (handled by ${via})`);
  };
  for (let i = 1; i <= 6; i++) await send(`message ${i}`, senders[i % 2]!);
  await waitFor('the first six messages', () => readers.every((name) => received.get(name)!.length >= 6));

  say('server a', 'kill -9');
  await stopInstance(instances[0]!, 'SIGKILL');
  for (let i = 7; i <= 12; i++) await send(`message ${i}`, senders[1]!);
  await waitFor('all twelve messages', () => readers.every((name) => received.get(name)!.length >= 12));

  // The log itself is the reference: every client must hold exactly its entries, in its order.
  const expected = received.get(readers[0]!)!.map((event) => event.id);
  const stored = await backend.storedIds(`room:${ROOM}`);
  const exact = readers.every((name) => JSON.stringify(received.get(name)!.map((e) => e.id)) === JSON.stringify(stored));
  const vias = new Set(received.get(readers[0]!)!.map((e) => e.data.via));

  shuttingDown = true;
  for (const subscription of subscriptions) subscription.unsubscribe();
  await stopInstance(instances[1]!, 'SIGTERM');
  await balancer.close();
  await backend.cleanup();

  const requests = [...balancer.counts].map(([url, count]) => `${url}: ${count}`).join(', ');
  say('summary', `requests per instance: ${requests}`);
  if (!exact || expected.length !== 12 || errors.length > 0 || vias.size !== 2) {
    console.error(`FAILED: stored ${stored.length}, errors ${JSON.stringify(errors)}, via ${[...vias].join('+')}`);
    process.exitCode = 1;
    return;
  }
  say('summary', `OK: ${readers.length} clients got all ${stored.length} messages exactly once, in order, across both instances and a kill -9`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
