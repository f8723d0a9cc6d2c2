/**
 * Deno: the Deno recipe of docs/adapters.md (`Deno.serve` with the fetch
 * handler beside tRPC's fetchRequestHandler), run by the `deno` binary from
 * npm, driven by the real longPollLink from this process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaries, bundle, deliversTypedEventsThenStops, idleSubscription, printedUrl, shutdownAnswersTheHeldPoll, startProcess } from './support';

let entry: Awaited<ReturnType<typeof bundle>>;
beforeAll(async () => {
  entry = await bundle('deno.ts');
});
afterAll(() => entry?.remove());

describe('Deno', () => {
  it('delivers typed events, outlives the default hold idle, stops procedures on unsubscribe and answers held polls on SIGTERM', async ({ onTestFinished: cleanup }) => {
    const host = startProcess(binaries.deno(), ['run', '--allow-net=127.0.0.1', '--allow-env=PORT,NODE_ENV', entry.file], {
      env: { PORT: '0', DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
    });
    cleanup(() => host.stop());
    const url = await printedUrl(host, /listening on (http:\/\/\S+)/);
    const idle = await idleSubscription(url);
    cleanup(idle.unsubscribe);

    await deliversTypedEventsThenStops(url);
    await idle.quietPastTheHold();
    await shutdownAnswersTheHeldPoll(idle, url, async () => host.child.kill('SIGTERM'));
    // shutdown() found nothing left to wait for, and the listener exits.
    expect(await host.exited).toBe(0);
  }, 60_000);
});
