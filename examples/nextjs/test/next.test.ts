import { createLongPollClient, recorder } from '@trpc-longpoll/e2e';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { AppRouter } from '../src/server/router';
import { APP_TRPC, PAGES_RAW_TRPC, PAGES_TRPC, type ChatMessage } from '../src/shared/chat';
import { buildOnce, startNext, type NextServer } from './nextApp';
import { deepInputPoll, HUGE_POLL, pollWatch, queries, rawPost } from './polls';
import { chat, duplicates, haveChromium, health, launchChromium, messageTexts, pollLog, say } from './tabs';

/*
 * The example as users run it: `next build`, then `next start` on 127.0.0.1,
 * serving both routers. The App Router route handler (`/api/trpc`) is driven
 * by two Chromium tabs of the chat page; the Pages Router API route
 * (`/api/pages-trpc`, and `/api/pages-raw-trpc` with Next's body parser off)
 * by the real `longPollLink` from this process. The tests run in order on one
 * server, and the last one sends it SIGTERM.
 */

/** Longer than the default hold (20 s) plus its jitter: at least one poll is held to its end. */
const IDLE_MS = 27_000;
/** A poll answered after this long was held to the end of its hold, not answered early. */
const FULL_HOLD_MS = 15_000;

describe('examples/nextjs under next start', () => {
  let server: NextServer;
  let browser: Browser | undefined;
  let ann: Page;
  let bob: Page;
  const tabPolls = pollLog();
  const counts = (path: string) => queries(server.url + path).subscriptions.query();

  beforeAll(async () => {
    await buildOnce();
    server = await startNext();
    if (haveChromium) browser = await launchChromium();
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** A Node client on `path`, its polls watched; unsubscribed when the test ends. */
  function subscribe(path: string) {
    const watch = pollWatch(path);
    const client = createLongPollClient<AppRouter>(server.url + path, { fetch: watch.fetch });
    const messages = recorder<{ id: string; data: ChatMessage }>();
    const subscription = client.onMessage.subscribe({ lastEventId: null }, messages.callbacks);
    onTestFinished(() => subscription.unsubscribe());
    return { client, messages, subscription, watch };
  }

  it.skipIf(!haveChromium)('App Router: two tabs chat, each message shown once in the other tab, with a real Date', async () => {
    const context = await browser!.newContext();
    context.setDefaultTimeout(15_000);
    ann = await context.newPage();
    bob = await context.newPage();
    for (const [page, name] of [[ann, 'Ann'], [bob, 'Bob']] as const) {
      tabPolls.watch(page);
      await page.goto(`${server.url}/?name=${name}`);
    }
    for (const page of [ann, bob]) await expect.poll(() => chat(page).getAttribute('data-status'), { timeout: 20_000 }).toBe('pending');

    await say(ann, 'Hi Bob, from the App Router');
    await bob.locator('li', { hasText: 'Hi Bob, from the App Router' }).waitFor();
    await say(bob, 'Hi Ann, one poll for both tabs');
    await ann.locator('li', { hasText: 'one poll for both tabs' }).waitFor();

    for (const page of [ann, bob]) {
      await expect.poll(() => messageTexts(page)).toEqual(['Hi Bob, from the App Router', 'Hi Ann, one poll for both tabs']);
      // superjson brought `at` back as a Date: the page checks `instanceof Date` and calls `toISOString()` on it.
      expect(await page.locator('li time').evaluateAll((els) => els.map((el) => el.getAttribute('data-type')))).toEqual(['Date', 'Date']);
      expect(await duplicates(page)).toBe(0);
    }
    expect(await bob.locator('li b').allTextContents()).toEqual(['Ann', 'Bob']);
  }, 60_000);

  it('Pages Router: delivers a typed event (a Date through superjson), and an unsubscribe stops the procedure', async () => {
    const before = await counts(PAGES_TRPC);
    const { client, messages, subscription } = subscribe(PAGES_TRPC);
    await messages.untilStarted({ ms: 15_000 });
    await expect.poll(() => counts(PAGES_TRPC), { timeout: 10_000 }).toMatchObject({ running: before.running + 1 });

    const sent = await client.send.mutate({ author: 'Ann', text: 'from the pages router' });
    const [event] = await messages.untilData(1, { ms: 10_000 });
    // A tracked event, as the client types it: `{ id, data }`.
    expect(event).toEqual({ id: expect.any(String), data: sent });
    expect(event!.data.at).toBeInstanceOf(Date);

    // The link says goodbye with an empty poll; the procedure's `finally` runs on the server.
    subscription.unsubscribe();
    await expect.poll(() => counts(PAGES_TRPC), { timeout: 10_000 }).toMatchObject({ running: before.running });
    expect(messages.failures()).toEqual([]);
  }, 40_000);

  it('Pages Router: a body over the limit gets 413 and the server goes on serving; a parsed body is still checked', async () => {
    const url = server.url + PAGES_TRPC;
    expect((await rawPost(url, HUGE_POLL)).status).toBe(413);
    // Without a content-length, Next's parser counts what arrives and stops at its limit.
    expect((await rawPost(url, HUGE_POLL, { chunked: true })).status).toBe(413);
    // Malformed JSON never reaches the handler either: Next's parser refuses it.
    expect((await rawPost(url, '{"v":1,')).status).toBe(400);
    // What Next parsed goes through the handler's own checks: an input nested too deep is refused.
    const deep = await rawPost(url, deepInputPoll(200));
    expect(deep.status).toBe(200);
    expect(deep.text).toContain('nested deeper');
    expect(await counts(PAGES_TRPC)).toMatchObject({ running: expect.any(Number) });
  });

  it('Pages Router, body parser off: typed events, and tRPC still reads its own requests', async () => {
    const { client, messages } = subscribe(PAGES_RAW_TRPC);
    await messages.untilStarted({ ms: 15_000 });
    const sent = await client.send.mutate({ author: 'Bob', text: 'unparsed' });
    const [event] = await messages.untilData(1, { ms: 10_000 });
    expect(event!.data).toEqual(sent);
    expect(event!.data.at).toBeInstanceOf(Date);
  }, 30_000);

  it("Pages Router, body parser off: oversized and malformed bodies get the protocol's errors", async () => {
    const url = server.url + PAGES_RAW_TRPC;
    for (const chunked of [false, true]) {
      const answer = await rawPost(url, HUGE_POLL, { chunked });
      expect(answer.status).toBe(413);
      expect(answer.text).toContain('PAYLOAD_TOO_LARGE');
    }
    const malformed = await rawPost(url, '{"v":1,');
    expect(malformed.status).toBe(400);
    expect(malformed.text).toContain('PARSE_ERROR');
    expect(await counts(PAGES_RAW_TRPC)).toMatchObject({ running: expect.any(Number) });
  });

  it('both routers stay live past the default hold: no failed poll, error or reconnect', async () => {
    const node = subscribe(PAGES_TRPC);
    await node.messages.untilStarted({ ms: 15_000 });
    const started = { app: (await counts(APP_TRPC)).started, pages: (await counts(PAGES_TRPC)).started };
    const since = Date.now();
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));

    // Pages Router, a Node client: a poll held to the end of its hold and answered normally; nothing failed.
    expect(node.watch.polls.some((p) => p.status === 200 && p.answeredAt! >= since && p.answeredAt! - p.sentAt >= FULL_HOLD_MS)).toBe(true);
    expect(node.watch.failedSince(since)).toEqual([]);
    expect(node.messages.failures()).toEqual([]);
    expect(node.messages.count('started')).toBe(1);
    // Nothing on the server started a procedure again.
    expect((await counts(PAGES_TRPC)).started).toBe(started.pages);

    if (!browser) return;
    // App Router, the two tabs: the same, seen by the browser and by the page.
    expect(tabPolls.answered.some((a) => a.status === 200 && a.at >= since && a.heldMs >= FULL_HOLD_MS)).toBe(true);
    expect(tabPolls.trouble.filter((t) => t.at >= since)).toEqual([]);
    for (const page of [ann, bob]) expect(await health(page)).toEqual({ status: 'pending', errors: '0', reconnects: '0' });
    expect((await counts(APP_TRPC)).started).toBe(started.app);

    await say(bob, 'still here after the hold');
    await ann.locator('li', { hasText: 'still here after the hold' }).waitFor();
    expect(await duplicates(ann)).toBe(0);
  }, 60_000);

  it.skipIf(!haveChromium)('App Router: a tab that navigates away, then one that leaves the chat page, each stop their procedure', async () => {
    const running = async () => (await counts(APP_TRPC)).running;
    const before = await running();
    expect(before).toBeGreaterThanOrEqual(2);

    await bob.goto('about:blank');
    await expect.poll(running, { timeout: 10_000 }).toBe(before - 1);

    // A client-side navigation: the chat unmounts, `useSubscription` unsubscribes, the link says goodbye.
    await ann.getByRole('link', { name: 'Leave' }).click();
    await ann.getByText('You left the chat').waitFor();
    await expect.poll(running, { timeout: 10_000 }).toBe(before - 2);
  }, 30_000);

  it('SIGTERM to next start answers the held polls of both routers at once', async () => {
    const clients = [subscribe(APP_TRPC), subscribe(PAGES_TRPC)];
    for (const { messages } of clients) await messages.untilStarted({ ms: 15_000 });
    // Let the polls that follow the first answers be held a while.
    const heldForASecond = () => clients.every(({ watch }) => Date.now() - (watch.held()?.sentAt ?? Infinity) > 1_000);
    await expect.poll(heldForASecond, { timeout: 10_000 }).toBe(true);
    const held = clients.map(({ watch }) => watch.held()!);

    const exit = server.terminate();
    // Well inside the 20 s hold: `close()` answered them, rather than Next waiting the hold out.
    await expect.poll(() => held.every((p) => p.answeredAt !== undefined || p.failed !== undefined), { timeout: 10_000 }).toBe(true);
    expect(held.map((p) => p.status)).toEqual([200, 200]);
    // Real clients would poll another instance now; these leave, so nothing keeps the server's connections busy.
    for (const { subscription } of clients) subscription.unsubscribe();
    expect(await exit).toBe(143);
  }, 40_000);
});
