import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the sources, so `pnpm test` needs no build step.
    alias: {
      // Subpath entries (`@trpc-longpoll/server/adapters/express`, …) before the package roots, which would swallow them.
      '@trpc-longpoll/server/adapters': fileURLToPath(new URL('./packages/server/src/adapters', import.meta.url)),
      '@trpc-longpoll/protocol': src('protocol'),
      '@trpc-longpoll/server': src('server'),
      '@trpc-longpoll/client': src('client'),
      '@trpc-longpoll/redis/format': fileURLToPath(new URL('./packages/redis/src/format.ts', import.meta.url)),
      '@trpc-longpoll/redis': src('redis'),
      '@trpc-longpoll/upstash': src('upstash'),
      '@trpc-longpoll/postgres': src('postgres'),
      // The shared test helpers (private, never built): other packages' tests import them by name.
      '@trpc-longpoll/e2e': src('e2e'),
    },
  },
  test: {
    reporters: ['default', './vitest.summary.ts'],
    include: ['packages/*/test/**/*.test.{ts,tsx}', 'examples/*/test/**/*.test.{ts,tsx}'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
