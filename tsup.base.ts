import type { Options } from 'tsup';

/** What every published package builds: ESM + CJS with types for both, from `src/`. */
export function packageBuild(entry: Options['entry'] = ['src/index.ts']): Options {
  return {
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node18',
    tsconfig: 'tsconfig.build.json',
  };
}
