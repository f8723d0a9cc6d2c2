/**
 * Hono on Node: the Hono recipe of docs/adapters.md served by
 * @hono/node-server, with @hono/trpc-server beside the long-poll handler,
 * driven by the real longPollLink.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { describe, expect, it } from 'vitest';
import { createHonoApp } from './fixtures/hono';
import { deliversTypedEventsThenStops, idleSubscription, shutdownAnswersTheHeldPoll, type Cleanup } from './support';

async function startHono(cleanup: Cleanup) {
  const { app, longPoll } = createHonoApp();
  // @hono/node-server serves with node:http unless told to use http2.
  const server = await new Promise<Server>((resolve) => {
    const listening = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(listening as Server));
  });
  const closed = new Promise<void>((resolve) => server.once('close', () => resolve()));
  cleanup(async () => {
    server.closeAllConnections();
    server.close();
    await closed;
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, longPoll, server, closed };
}

describe('Hono on @hono/node-server', () => {
  it('delivers typed events, outlives the default hold idle, stops procedures on unsubscribe and answers held polls on close()', async ({ onTestFinished: cleanup }) => {
    const { url, longPoll, server, closed } = await startHono(cleanup);
    const idle = await idleSubscription(url);
    cleanup(idle.unsubscribe);

    await deliversTypedEventsThenStops(url);
    await idle.quietPastTheHold();
    await shutdownAnswersTheHeldPoll(idle, url, async () => {
      await longPoll.close();
      server.close();
    });
    // Nothing held the server open: it closes without waiting out a hold.
    await expect(Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open'), 10_000))])).resolves.toBe('closed');
  }, 60_000);
});
