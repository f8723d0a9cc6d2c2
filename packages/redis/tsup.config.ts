import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.base';

// The root, and the storage format on its own (no ioredis) for the REST log.
export default defineConfig(packageBuild({ index: 'src/index.ts', format: 'src/format.ts' }));
