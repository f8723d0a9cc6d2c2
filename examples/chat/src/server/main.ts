/**
 * Starts the chat: `pnpm start` builds the page if needed and serves it,
 * `pnpm dev` serves it through Vite with hot reload. Both need nothing but Node.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildPage, distDir, viteConfig } from './bundle';
import { startChatServer, type PageHandler } from './server';
import { serveStatic } from './static';

const dev = process.argv.includes('--dev');
const port = Number(process.env.PORT ?? 3000);

async function pageHandler(): Promise<{ page: PageHandler; close: () => Promise<void> }> {
  if (dev) {
    const { createServer } = await import('vite');
    const vite = await createServer({ ...viteConfig(), server: { middlewareMode: true }, appType: 'spa' });
    return { page: (req, res, next) => vite.middlewares(req, res, next), close: () => vite.close() };
  }
  if (!existsSync(join(distDir, 'index.html'))) {
    console.log('Building the page (once) …');
    await buildPage();
  }
  const serve = serveStatic(distDir);
  return { page: (req, res) => void serve(req, res), close: async () => {} };
}

const { page, close: closePage } = await pageHandler();
const server = await startChatServer({ page, port, host: process.env.HOST ?? '127.0.0.1' });
console.log(`Chat on ${server.url}  (tRPC's SSE link for comparison: ${server.url}/?transport=sse)`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    void Promise.all([server.close(), closePage()]).then(() => process.exit(0));
  });
}
