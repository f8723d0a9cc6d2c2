import { defineConfig } from 'vite';
import { viteConfig } from './src/server/bundle.js';

// `vite build` and `vite` use the same config as the server and the tests.
export default defineConfig(viteConfig());
