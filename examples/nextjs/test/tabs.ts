import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { APP_TRPC } from '../src/shared/chat';

/** Debian's Chromium, driven through playwright-core. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing; .ci/run installs it with apt-get install chromium`);
  console.warn(`\n⚠ Skipping the Next.js browser tests: ${CHROMIUM} is missing (apt-get install chromium).\n`);
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage'] });
}

/** What the tabs' polls came to: answers with how long each was held, and the trouble (non-200 answers, failed requests). */
export function pollLog() {
  const answered: { at: number; heldMs: number; status: number }[] = [];
  const trouble: { at: number; what: string }[] = [];
  const sentAt = new WeakMap<object, number>();
  const isPoll = (method: string, url: string) => method === 'POST' && new URL(url).pathname === APP_TRPC;
  return {
    answered,
    trouble,
    watch(page: Page): void {
      page.on('request', (request) => {
        if (isPoll(request.method(), request.url())) sentAt.set(request, Date.now());
      });
      page.on('response', (response) => {
        const request = response.request();
        if (!isPoll(request.method(), request.url())) return;
        const at = Date.now();
        answered.push({ at, heldMs: at - (sentAt.get(request) ?? at), status: response.status() });
        if (response.status() !== 200) trouble.push({ at, what: `answer ${response.status()}` });
      });
      page.on('requestfailed', (request) => {
        if (isPoll(request.method(), request.url())) trouble.push({ at: Date.now(), what: `failed: ${request.failure()?.errorText}` });
      });
    },
  };
}

export const chat = (page: Page) => page.locator('main');

export const messageTexts = (page: Page) => page.locator('li .text').allTextContents();

export async function say(page: Page, text: string): Promise<void> {
  const input = page.locator('input[name="text"]');
  await input.fill(text);
  await input.press('Enter');
}

/** Messages handed to the page, repeats included, minus the messages shown: the repeats. */
export async function duplicates(page: Page): Promise<number> {
  return Number(await chat(page).getAttribute('data-deliveries')) - (await page.locator('li').count());
}

/** The page's own tally: subscription status, `onError` calls and returns to `connecting` once live. */
export async function health(page: Page) {
  const main = chat(page);
  return {
    status: await main.getAttribute('data-status'),
    errors: await main.getAttribute('data-errors'),
    reconnects: await main.getAttribute('data-reconnects'),
  };
}
