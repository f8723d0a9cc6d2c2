/**
 * Bun: the Bun recipe of docs/adapters.md (`Bun.serve` with the fetch
 * handler beside tRPC's fetchRequestHandler), run by the `bun` binary from
 * npm, driven by the real longPollLink from this process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  binaries,
  bundle,
  deliversTypedEventsThenStops,
  idleSubscription,
  printedUrl,
  shutdownAnswersTheHeldPoll,
  startProcess,
  type Cleanup,
  type HostProcess,
} from './support';

let entry: Awaited<ReturnType<typeof bundle>>;
beforeAll(async () => {
  entry = await bundle('bun.ts');
});
afterAll(() => entry?.remove());

async function startBun(cleanup: Cleanup, env: Record<string, string> = {}): Promise<{ host: HostProcess; url: string }> {
  const host = startProcess(binaries.bun(), ['run', entry.file], { env: { PORT: '0', NODE_ENV: 'production', ...env } });
  cleanup(() => host.stop());
  return { host, url: await printedUrl(host, /listening on (http:\/\/\S+)/) };
}

// The two tests mostly wait, so they wait together.
describe.concurrent('Bun', () => {
  it('delivers typed events, outlives the default hold idle, stops procedures on unsubscribe and answers held polls on SIGTERM', async ({ onTestFinished: cleanup }) => {
    const { host, url } = await startBun(cleanup);
    const idle = await idleSubscription(url);
    cleanup(idle.unsubscribe);

    await deliversTypedEventsThenStops(url);
    await idle.quietPastTheHold();
    await shutdownAnswersTheHeldPoll(idle, url, async () => host.child.kill('SIGTERM'));
    // stop() found nothing left to wait for: the process ends by itself.
    expect(await host.exited).toBe(0);
  }, 60_000);

  it("with Bun's default idleTimeout (10 s), a held poll still lasts its 20 s; a streamed answer that stalls is cut", async ({ onTestFinished: cleanup }) => {
    const { url } = await startBun(cleanup, { BUN_DEFAULT_IDLE_TIMEOUT: '1' });
    const idle = await idleSubscription(url);
    cleanup(idle.unsubscribe);

    // The default is in force: a response that has begun and then sends nothing for 10 s is closed
    // (whole, it would read "first byte;after 15 s").
    const stalled = await fetch(`${url}/stalled-stream`);
    await expect(stalled.text()).rejects.toThrow();

    // A held poll has no response yet while it waits, and Bun 1.4 does not time that out.
    await idle.quietPastTheHold();
  }, 60_000);
});
