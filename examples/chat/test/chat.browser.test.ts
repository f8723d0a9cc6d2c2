import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTRPCClient, httpBatchLink } from '@trpc/client';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import superjson from 'superjson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPage } from '../src/server/bundle';
import type { ChatRouter } from '../src/server/router';
import { startChatServer, type ChatServer } from '../src/server/server';
import { serveStatic } from '../src/server/static';
import { ROOMS, TRPC_PATH, type Transport } from '../src/shared/chat';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// The docs' screenshots and tab figures are refreshed only on request (`pnpm docs:assets`), so a test run leaves the tree clean.
const assets = process.env.UPDATE_DOCS_ASSETS
  ? fileURLToPath(new URL('../../../docs/assets/', import.meta.url))
  : join(tmpdir(), 'trpc-longpoll-chat-assets');
const TABS = 12;

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing; .ci/run installs it with apt-get install chromium`);
  console.warn(`\n⚠ Skipping the chat browser test: ${CHROMIUM} is missing (apt-get install chromium).\n`);
}

describe.skipIf(!haveChromium)('examples/chat in Chromium', () => {
  let server: ChatServer;
  let browser: Browser;
  let outDir: string;

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'chat-page-'));
    await buildPage(outDir);
    const serve = serveStatic(outDir);
    server = await startChatServer({ page: (req, res) => void serve(req, res) });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // This machine has no network beyond loopback: keep Chromium from trying.
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  /** A Node client, as another user would be: it sends through tRPC's ordinary HTTP link. */
  function sender() {
    return createTRPCClient<ChatRouter>({ links: [httpBatchLink({ url: server.url + TRPC_PATH, transformer: superjson })] });
  }

  const liveRooms = (page: Page) => page.locator(`section.room[data-status="pending"]`).count();

  async function openChat(context: BrowserContext, name: string, transport: Transport = 'longpoll'): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${server.url}/?name=${name}&transport=${transport}`);
    return page;
  }

  it('lets two people in separate browser contexts chat', async () => {
    const ann = await browser.newContext({ viewport: { width: 1100, height: 520 } });
    const bob = await browser.newContext();
    try {
      const annPage = await openChat(ann, 'Ann');
      const bobPage = await openChat(bob, 'Bob');
      for (const page of [annPage, bobPage]) await expect.poll(() => liveRooms(page), { timeout: 15_000 }).toBe(ROOMS.length);

      await say(annPage, 'general', 'Hi Bob, long-poll here');
      const atBob = bobPage.locator('[data-room="general"] li', { hasText: 'Hi Bob, long-poll here' });
      await atBob.waitFor({ timeout: 10_000 });
      expect(await atBob.locator('b').textContent()).toBe('Ann');

      await say(bobPage, 'random', 'Hello Ann! One poll, three rooms.');
      await annPage.locator('[data-room="random"] li', { hasText: 'One poll, three rooms.' }).waitFor({ timeout: 10_000 });
      await say(annPage, 'help', 'And every message has a real Date.');
      await bobPage.locator('[data-room="help"] li', { hasText: 'real Date' }).waitFor({ timeout: 10_000 });
      // The time shown came from a `Date` that superjson carried, not a string.
      const stamp = await bobPage.locator('[data-room="help"] li time').last().getAttribute('datetime');
      expect(Number.isNaN(Date.parse(stamp ?? ''))).toBe(false);

      await mkdir(assets, { recursive: true });
      await annPage.screenshot({ path: join(assets, 'chat.png') });

      // A newcomer (here: Bob again, after a reload) gets the room's recent messages first.
      await bobPage.reload();
      await bobPage.locator('[data-room="general"] li', { hasText: 'Hi Bob, long-poll here' }).waitFor({ timeout: 10_000 });
      await expect.poll(() => liveRooms(bobPage), { timeout: 15_000 }).toBe(ROOMS.length);
    } finally {
      await ann.close();
      await bob.close();
    }
  }, 40_000);

  it(`delivers live messages to ${TABS} tabs of one origin over HTTP/1.1 with longPollLink, where httpSubscriptionLink stalls`, async () => {
    // What the example ships: the tabs share one poll (`shareAcrossTabs`), and its leader tab closes midway.
    const longPoll = await tabsReceive({ transport: 'longpoll', patience: 20_000, closeLeader: true });
    // For the record, bounded: every tab holding its own poll, and tRPC's SSE link.
    const everyTabHolds = await tabsReceive({ transport: 'longpoll', holds: 'every-tab', patience: 4_000 });
    const sse = await tabsReceive({ transport: 'sse', patience: 4_000, screenshot: join(assets, 'chat-sse-stalled.png') });
    const comparison = {
      setup: `${TABS} tabs of one origin opened at once in one Chromium profile over HTTP/1.1 (at most 6 connections per host), ${ROOMS.length} room subscriptions per tab; one message sent by a Node client, then one typed into the last tab (if it loaded)`,
      chromium: browser.version(),
      note: 'loaded/live/received count tabs; received[i] counts tabs showing message i within the patience window; msToDeliver is until the last of them showed it; peakPolls is the most long-poll requests the server had in flight at once while the messages went out; duplicates counts messages a tab was handed twice',
      'longPollLink (shareAcrossTabs: one tab polls for all)': longPoll,
      'longPollLink (every tab holds a poll)': everyTabHolds,
      'httpSubscriptionLink (one EventSource per subscription)': sse,
    };
    console.log(JSON.stringify(comparison, null, 2));
    await mkdir(assets, { recursive: true });
    await writeFile(join(assets, 'tabs-comparison.json'), `${JSON.stringify(comparison, null, 2)}\n`);

    expect(longPoll).toMatchObject({ loaded: TABS, live: TABS, received: [TABS, TABS], peakPolls: 1, duplicates: 0 });
    // The leader tab closed; another took over the same server session: the other tabs missed nothing.
    expect(longPoll.afterLeaderClosed).toMatchObject({ received: [TABS - 1, TABS - 1, TABS - 1], peakPolls: 1, duplicates: 0 });
    // A tab that vanished without a word no longer has subscriptions on the server.
    expect(longPoll.afterFollowerVanished).toEqual({ subscriptionsEnded: ROOMS.length });
    // 36 EventSources want the origin's 6 connections and never give one back, so at
    // most 6 tabs can hear anything, however fast the machine is.
    expect(sse.received[0]).toBeLessThan(TABS);
  }, 120_000);

  /**
   * Opens the tabs at once, as a browser restoring a session does, waits for
   * them to load and go live, then counts the tabs that show each of two
   * messages: one sent from Node, one typed into the last tab. With
   * `closeLeader`, then closes the tab that holds the shared poll and counts
   * again for three messages: one sent at once (during the handover), one
   * typed into a remaining tab, and one more from Node once a poll is held again.
   */
  async function tabsReceive(opts: {
    transport: Transport;
    holds?: 'every-tab';
    patience: number;
    screenshot?: string;
    closeLeader?: boolean;
  }) {
    const { transport, holds, patience } = opts;
    const context = await browser.newContext({ viewport: { width: 1100, height: 520 } });
    // A stalled tab must not hold the test for Playwright's default 30 s.
    context.setDefaultTimeout(5_000);
    const started = Date.now();
    try {
      const pages: Page[] = [];
      /** When each tab last sent a long-poll request: the leader is the tab that polls. */
      const lastPoll = new Map<Page, number>();
      for (let i = 0; i < TABS; i++) {
        const page = await context.newPage();
        pages.push(page);
        page.on('request', (request) => {
          if (request.method() === 'POST' && new URL(request.url()).pathname === TRPC_PATH) lastPoll.set(page, Date.now());
        });
        const query = new URLSearchParams({ name: `tab${i + 1}`, transport, ...(holds ? { holds } : {}) });
        // A stalled tab may never finish loading: that is part of what is measured.
        page.goto(`${server.url}/?${query}`, { timeout: 0 }).catch(() => {});
      }
      const tally = async (selector: string, among = pages) => {
        const counts = await Promise.all(among.map((page) => countNow(page, selector)));
        return counts.filter((n) => n > 0).length;
      };
      const live = () => tally(`main:not(:has(section.room:not([data-status="pending"]))) section.room`);

      await waitUntil(async () => (await live()) === TABS, patience);
      const result = {
        loaded: await tally('section.room'),
        live: await live(),
        msToLive: Date.now() - started,
        received: [] as number[],
        msToDeliver: [] as number[],
        peakPolls: 0,
        duplicates: 0,
        afterLeaderClosed: undefined as undefined | { received: number[]; msToDeliver: number[]; peakPolls: number; duplicates: number },
        afterFollowerVanished: undefined as undefined | { subscriptionsEnded: number },
      };
      if (opts.screenshot) await screenshotStalledTab(pages, opts.screenshot);

      /** Sends each message and counts the tabs among `among` that show it within the patience window. */
      const deliver = async (among: Page[], senders: Array<'Node' | Page>, into: { received: number[]; msToDeliver: number[] }) => {
        for (const from of senders) {
          const text = `${transport}${holds ? `-${holds}` : ''} message ${into.received.length + 1} ${Math.random().toString(36).slice(2, 8)}`;
          const sentAt = Date.now();
          if (from === 'Node') await sender().send.mutate({ room: 'general', author: 'Node', text });
          else if ((await countNow(from, 'section.room')) > 0) await say(from, 'general', text).catch(() => {});
          const shown = `[data-room="general"] li:has-text("${text}")`;
          await waitUntil(async () => (await tally(shown, among)) === among.length, patience);
          into.received.push(await tally(shown, among));
          into.msToDeliver.push(Date.now() - sentAt);
        }
      };
      /** Messages a tab was handed more than once (the page drops repeats by id, but counts every delivery). */
      const duplicates = async (among: Page[]) => {
        let total = 0;
        for (const page of among) {
          if ((await countNow(page, 'section.room')) === 0) continue;
          const general = page.locator('section[data-room="general"]');
          const delivered = Number(await general.getAttribute('data-deliveries').catch(() => '0'));
          total += delivered - (await countNow(page, '[data-room="general"] li'));
        }
        return total;
      };

      server.polls.resetPeak();
      await deliver(pages, ['Node', pages[TABS - 1]!], result);
      result.peakPolls = server.polls.peak();
      result.duplicates = await duplicates(pages);

      if (opts.closeLeader) {
        const leader = [...lastPoll.entries()].sort((a, b) => b[1] - a[1])[0]![0];
        const rest = pages.filter((page) => page !== leader);
        await leader.close();
        const after = { received: [] as number[], msToDeliver: [] as number[], peakPolls: 0, duplicates: 0 };
        // Sent at once, while the next tab takes the lead, and then typed into a tab that was a follower.
        await deliver(rest, ['Node', rest[0]!], after);
        await waitUntil(async () => server.polls.inFlight() === 1, patience);
        server.polls.resetPeak();
        await deliver(rest, ['Node'], after);
        after.peakPolls = server.polls.peak();
        after.duplicates = await duplicates(rest);
        result.afterLeaderClosed = after;

        // A follower that vanishes without a word (crashed or discarded; here its `pagehide` message is
        // kept from going out): the lock it held while alive is released, so the leader drops its subscriptions.
        const newLeader = [...lastPoll.entries()].filter(([page]) => page !== leader).sort((a, b) => b[1] - a[1])[0]![0];
        const vanishing = rest.find((page) => page !== newLeader)!;
        await vanishing.evaluate(() => {
          BroadcastChannel.prototype.postMessage = () => {};
        });
        // Counted as a difference: the earlier tests' sessions linger on the server until they expire.
        const before = server.store.following();
        await vanishing.close();
        await waitUntil(async () => server.store.following() <= before - ROOMS.length, patience);
        result.afterFollowerVanished = { subscriptionsEnded: before - server.store.following() };
      }
      return result;
    } finally {
      await context.close();
    }
  }
});

/** A tab that loaded but has a room still connecting, for the docs. */
async function screenshotStalledTab(pages: Page[], path: string): Promise<void> {
  for (const page of pages) {
    if ((await countNow(page, 'section.room')) === 0) continue;
    if ((await countNow(page, 'section.room[data-status="connecting"]')) === 0) continue;
    await mkdir(dirname(path), { recursive: true });
    await page.screenshot({ path, timeout: 5_000 }).catch(() => {});
    return;
  }
}

/** How many elements match right now; a page that has not loaded counts 0 instead of being waited for. */
async function countNow(page: Page, selector: string): Promise<number> {
  const count = page.locator(selector).count().catch(() => 0);
  return Promise.race([count, new Promise<number>((resolve) => setTimeout(() => resolve(0), 500))]);
}

async function waitUntil(check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
}

async function say(page: Page, room: string, text: string): Promise<void> {
  const input = page.locator(`[data-room="${room}"] input[name="text"]`);
  await input.fill(text);
  await input.press('Enter');
}
