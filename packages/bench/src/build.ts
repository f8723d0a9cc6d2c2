import { build, type Plugin } from 'esbuild';
import { fileURLToPath } from 'node:url';

/**
 * Bundles the server and load-generator processes, with `@trpc-longpoll/*`
 * compiled in from the sources (through the root tsconfig `paths`) and every
 * other package left to `node_modules`.
 *
 * Why not run them with tsx: tsx compiles with esbuild's `keepNames`, which
 * wraps every named function in `Object.defineProperty(fn, 'name', …)`. That
 * costs time at each closure's creation and puts each such closure's
 * properties in a ~256-byte dictionary, which inflated the long-poll's
 * memory per held poll by several KB in heap snapshots. tRPC itself, loaded
 * from its published JavaScript, paid nothing of the kind. These bundles
 * match what `tsup` publishes (esbuild, target node18, no `keepNames`).
 */
const externalPackages: Plugin = {
  name: 'external-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@trpc-longpoll/') ? undefined : { path: args.path, external: true }));
  },
};

export async function buildProcesses(outdir: string): Promise<{ server: string; loadgen: string }> {
  const src = (file: string) => fileURLToPath(new URL(file, import.meta.url));
  await build({
    entryPoints: { server: src('./server/main.ts'), loadgen: src('./loadgen/main.ts') },
    outdir,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node18',
    sourcemap: true,
    tsconfig: src('../tsconfig.json'),
    plugins: [externalPackages],
    outExtension: { '.js': '.mjs' },
    logLevel: 'warning',
  });
  return { server: `${outdir}/server.mjs`, loadgen: `${outdir}/loadgen.mjs` };
}
