import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createTestRouter, startServer, useCleanup, waitFor } from '../src';

/**
 * React Native readiness, the app in the background: the client runs in its
 * own process without Web Crypto, `AbortSignal.timeout`, `BroadcastChannel`
 * and `navigator.locks` (react-native-background.client.ts), and is stopped
 * with SIGSTOP — nothing of it runs, as when the OS suspends a backgrounded
 * app — for longer than the server's idle expiry, while events are published.
 * After SIGCONT it must resume by its cursor: every event once, in order.
 */
const cleanup = useCleanup();
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const clientScript = fileURLToPath(new URL('./react-native-background.client.ts', import.meta.url));

type Line = { removed?: string[]; started?: true; id?: string; text?: string; at?: string | null; error?: string; state?: string };

/** Starts the app process; its stdout lines, parsed, land in `lines`. */
function startApp(url: string, holdMs: number) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', clientScript], {
    cwd: repoRoot,
    env: { ...process.env, URL: url, HOLD_MS: String(holdMs) },
    // The app exits when this pipe closes.
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines: Line[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(JSON.parse(line) as Line));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  cleanup(async () => {
    child.kill('SIGCONT');
    child.stdin!.end();
    await exited;
  });
  return {
    lines,
    events: () => lines.filter((line) => line.id !== undefined),
    background: () => child.kill('SIGSTOP'),
    foreground: () => child.kill('SIGCONT'),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a React Native app in the background longer than the idle expiry', () => {
  it('resumes by its cursor after SIGCONT: every event once, in order, from a new run', async () => {
    const fixture = createTestRouter();
    const idleTimeoutMs = 1_500;
    const server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }), holdMs: 1_000, idleTimeoutMs });
    cleanup(() => server.close());
    const stats = () => server.longPoll.stats();
    const app = startApp(`${server.url}/`, 1_000);
    await waitFor(() => app.lines.some((line) => line.started), 15_000, 'the app to subscribe');
    expect(app.lines[0]!.removed).toEqual(['undefined', 'undefined', 'undefined', 'undefined']);

    const publish = (texts: string[]) => texts.forEach((text, i) => fixture.feed.publish({ text, at: new Date(i) }));
    publish(['a', 'b', 'c']);
    await waitFor(() => app.events().length === 3, 5_000, 'the first events');

    app.background();
    publish(['d', 'e']);
    // The server gives up on the silent client: its run is stopped and its session dropped.
    await waitFor(() => stats().runs.total === 0 && stats().sessions === 0, 10_000, 'the server to expire the client');
    expect(fixture.finallies).toEqual(['onAdd']);
    // A suspended app's connections may not survive it either: here the app wakes to a dead socket.
    server.server.closeAllConnections();
    publish(['f', 'g']);
    await sleep(500);
    expect(app.events().length).toBe(3);
    const resumedBefore = stats().counters.runs.resumed;

    app.foreground();
    publish(['h']);
    await waitFor(() => app.events().length >= 8, 10_000, 'the events published in the background and after');
    await sleep(500);

    const events = app.events();
    expect(events.map((e) => e.text)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
    expect(events.map((e) => e.id)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8']);
    expect(events.every((e) => typeof e.at === 'string')).toBe(true);
    // A new run on the server, started from the cursor's lastEventId.
    expect(stats().counters.runs.resumed).toBe(resumedBefore + 1);
    expect(fixture.started).toEqual(['onAdd', 'onAdd']);
    expect(app.lines.filter((line) => line.error !== undefined && line.state === undefined)).toEqual([]);
  }, 40_000);
});
