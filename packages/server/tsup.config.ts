import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.base';

// One entry per public module: the root, and the framework adapters as
// subpaths, so importing the root never loads express, fastify, Lambda or Next.js types.
// ESM shares the core between entries through chunks (tsup's default). CJS
// gets a copy per entry instead of tsup's experimental CJS splitting; that is
// safe because nothing crosses entries by identity (each adapter makes its
// own core, and cursor errors are recognised by a property, not instanceof).
export default defineConfig(
  packageBuild({
    index: 'src/index.ts',
    'adapters/express': 'src/adapters/express.ts',
    'adapters/fastify': 'src/adapters/fastify.ts',
    'adapters/aws-lambda': 'src/adapters/aws-lambda.ts',
    'adapters/next': 'src/adapters/next.ts',
  }),
);
