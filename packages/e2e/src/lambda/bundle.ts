import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const repoRoot = fileURLToPath(new URL('../../../..', import.meta.url));

export interface LambdaBundle {
  /** The runtime bootstrap every environment runs. */
  runtime: string;
  /** The function's handler module (`app.ts`), with every dependency inside, as deployed. */
  handler: string;
}

let bundled: Promise<LambdaBundle> | null = null;

/**
 * Bundles the function the way Lambda functions are usually deployed (one
 * esbuild bundle, dependencies included; the workspace packages from their
 * sources through the root tsconfig's paths), once per test process. Plain
 * `node` then starts an environment without compiling anything.
 */
export function bundleLambda(): Promise<LambdaBundle> {
  bundled ??= (async () => {
    const outdir = mkdtempSync(join(tmpdir(), 'tlp-lambda-'));
    process.once('exit', () => rmSync(outdir, { recursive: true, force: true }));
    await build({
      entryPoints: { runtime: fileURLToPath(new URL('./runtime.ts', import.meta.url)), app: fileURLToPath(new URL('./app.ts', import.meta.url)) },
      outdir,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      tsconfig: join(repoRoot, 'tsconfig.json'),
      // CommonJS dependencies (ioredis…) call require() for Node's modules, which an ES module lacks.
      banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
      logLevel: 'warning',
    });
    return { runtime: join(outdir, 'runtime.mjs'), handler: join(outdir, 'app.mjs') };
  })();
  return bundled;
}
