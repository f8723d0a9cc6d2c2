/**
 * The app side of react-native-background.test.ts, as its own process so the
 * test can send it to the background with SIGSTOP: a tRPC client with the
 * long-poll link, in a Node without what React Native lacks (Web Crypto,
 * `AbortSignal.timeout`, `BroadcastChannel`, `navigator.locks`), subscribed to
 * `post.onAdd`. Every callback is written to stdout as one JSON line.
 *
 * `node --import tsx packages/e2e/test/react-native-background.client.ts`, with
 * URL and HOLD_MS; it exits when stdin ends.
 */
for (const name of ['crypto', 'BroadcastChannel', 'navigator']) {
  Object.defineProperty(globalThis, name, { value: undefined, configurable: true, writable: true });
}
(AbortSignal as { timeout?: unknown }).timeout = undefined;

// Imported only now, so nothing can have kept a reference to what was removed.
const { createLongPollClient } = await import('../src/client');
type TestRouter = import('../src/router').TestRouter;

export {};

const write = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
write({ removed: [typeof globalThis.crypto, typeof BroadcastChannel, typeof navigator, typeof AbortSignal.timeout] });

const client = createLongPollClient<TestRouter>(process.env.URL!, {
  holdMs: Number(process.env.HOLD_MS),
  shareAcrossTabs: true,
  retry: { initialDelayMs: 50, maxDelayMs: 400 },
});
const sub = client.post.onAdd.subscribe(undefined, {
  onStarted: () => write({ started: true }),
  onData: (event) => write({ id: event.id, text: event.data.text, at: event.data.at instanceof Date ? event.data.at.toISOString() : null }),
  onError: (error) => write({ error: error.message }),
  onConnectionStateChange: (state) => write({ state: state.state, error: state.error ? String(state.error.message) : null }),
});

process.stdin.once('end', () => {
  sub.unsubscribe();
  process.exit(0);
});
process.stdin.resume();
