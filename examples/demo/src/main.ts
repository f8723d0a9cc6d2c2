/**
 * trpc-longpoll demo: a real HTTP server and a real tRPC client in one
 * process. Two typed subscriptions travel over one long-poll; mutations
 * publish events; a late reader resumes a tracked feed from an id; then
 * everything shuts down cleanly and the process exits by itself.
 */
import type { Unsubscribable } from '@trpc/server/observable';
import { createClient } from './client';
import { bold, clock, dim, heading, log, type Channel } from './print';
import { createAppRouter, type ChatMessage, type Quote } from './router';
import { startServer } from './server';

const TIMEOUT_MS = 8_000;

/** Resolves when `check()` holds; checks again whenever `poke()` is called. */
function waiter() {
  const waiting = new Set<() => void>();
  return {
    poke: () => {
      for (const check of [...waiting]) check();
    },
    until(what: string, check: () => boolean): Promise<void> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(test);
          reject(new Error(`Timed out after ${TIMEOUT_MS} ms waiting for ${what}`));
        }, TIMEOUT_MS);
        const test = () => {
          if (!check()) return;
          clearTimeout(timer);
          waiting.delete(test);
          resolve();
        };
        waiting.add(test);
        test();
      });
    },
  };
}

function printMessage(channel: Channel, id: string, message: ChatMessage): void {
  log(channel, `${message.author}: ${bold(message.text)}  ${dim(`(id ${id}, sent ${clock(message.sentAt)})`)}`);
}

function printQuote(quote: Quote): void {
  log('ticker', `${quote.symbol.padEnd(5)} ${quote.price.toFixed(2).padStart(8)}  ${dim(`(at ${clock(quote.at)})`)}`);
}

async function main(): Promise<void> {
  const app = createAppRouter();
  const server = await startServer(app.router, Number(process.env.PORT ?? 0));
  log('server', `listening on ${server.url}`);

  const ann = createClient(server.url, 'ann');
  const bob = createClient(server.url, 'bob');
  log('client', 'subscriptions → longPollLink (one held POST per client); queries and mutations → httpBatchLink');

  const events = waiter();
  const messages: { id: string; data: ChatMessage }[] = [];
  const quotes: Quote[] = [];
  const replayed: { id: string; data: ChatMessage }[] = [];
  const started = new Set<string>();
  const subscriptions: Unsubscribable[] = [];
  const onError = (channel: Channel) => (error: Error) => {
    log('error', `${channel}: ${error.message}`);
    process.exitCode = 1;
  };

  heading('Ann subscribes to the chat room and the ticker');
  subscriptions.push(
    ann.chat.onMessage.subscribe(undefined, {
      onStarted: () => {
        started.add('chat');
        log('chat', dim('subscribed'));
        events.poke();
      },
      // Tracked events arrive as `{ id, data }`; `data.sentAt` is a real Date again.
      onData: (event) => {
        messages.push(event);
        printMessage('chat', event.id, event.data);
        events.poke();
      },
      onError: onError('chat'),
    }),
    ann.ticker.onQuote.subscribe(
      { symbols: ['TRPC', 'POLL'] },
      {
        onStarted: () => {
          started.add('ticker');
          log('ticker', dim('subscribed to TRPC, POLL'));
          events.poke();
        },
        onData: (quote) => {
          quotes.push(quote);
          printQuote(quote);
          events.poke();
        },
        onError: onError('ticker'),
      },
    ),
  );
  await events.until('both subscriptions to start', () => started.has('chat') && started.has('ticker'));

  heading('Bob and Ann publish through mutations');
  await bob.chat.send.mutate({ text: 'hello from bob' });
  await bob.ticker.publish.mutate({ symbol: 'TRPC', price: 11.25 });
  await ann.chat.send.mutate({ text: 'hi bob, I see you over long-polling' });
  // A burst in one batch; the long-poll answer carries what is ready together.
  await Promise.all([
    bob.ticker.publish.mutate({ symbol: 'POLL', price: 20.01 }),
    bob.ticker.publish.mutate({ symbol: 'OTHER', price: 1 }),
    bob.ticker.publish.mutate({ symbol: 'TRPC', price: 11.5 }),
    bob.chat.send.mutate({ text: 'no WebSocket, no SSE, just POST' }),
  ]);
  await events.until('3 chat messages and 3 quotes', () => messages.length >= 3 && quotes.length >= 3);

  heading(`A late reader resumes the chat after the first message (id ${messages[0]!.id})`);
  const late = createClient(server.url, 'carol');
  subscriptions.push(
    late.chat.onMessage.subscribe(
      { lastEventId: messages[0]!.id },
      {
        onData: (event) => {
          replayed.push(event);
          printMessage('replay', event.id, event.data);
          events.poke();
        },
        onError: onError('replay'),
      },
    ),
  );
  await events.until('the replay of the second and third messages', () => replayed.length >= 2);

  heading('Unsubscribing and shutting down');
  for (const subscription of subscriptions) subscription.unsubscribe();
  // Each client tells the server it is done, so the procedures stop now rather than at idle expiry.
  const procedures = waiter();
  const poll = setInterval(procedures.poke, 20);
  try {
    await procedures.until('the server to stop every subscription', () => app.runningSubscriptions() === 0);
  } finally {
    clearInterval(poll);
  }
  log('client', 'unsubscribed; the server stopped every subscription');
  await server.close();
  await app.close();
  log('server', `closed after ${server.polls()} polls`);

  console.log(
    `\n${bold('Done:')} ${messages.length} chat messages, ${quotes.length} quotes and ${replayed.length} replayed messages, ` +
      `all typed, over ${server.polls()} polls.`,
  );
}

main().catch((error: unknown) => {
  log('error', error instanceof Error ? (error.stack ?? error.message) : String(error));
  // The server and the polls may still be open after a failure half-way; don't hang.
  process.exit(1);
});
