import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import type { InlineConfig } from 'vite';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** The example's root (where `index.html` is) and where `vite build` writes the page. */
export const appRoot = here('../..');
export const distDir = here('../../dist');

/**
 * The Vite config for the page, shared by `vite build`, the dev server and the
 * browser test. The workspace packages resolve to their sources, so the page
 * builds without `pnpm build`.
 */
export function viteConfig(): InlineConfig {
  return {
    root: appRoot,
    configFile: false,
    logLevel: 'warn',
    plugins: [react()],
    resolve: {
      alias: {
        '@trpc-longpoll/protocol': here('../../../../packages/protocol/src/index.ts'),
        '@trpc-longpoll/client': here('../../../../packages/client/src/index.ts'),
      },
    },
    build: { outDir: distDir, emptyOutDir: true },
  };
}

/** Builds the page into `dist/` (or `outDir`). */
export async function buildPage(outDir = distDir): Promise<string> {
  const { build } = await import('vite');
  const config = viteConfig();
  await build({ ...config, build: { ...config.build, outDir } });
  return outDir;
}
