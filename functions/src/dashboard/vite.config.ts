import { resolve } from 'node:path';
import { defineConfig } from 'vite';

/**
 * The operator dashboard: built into functions/lib/dashboard, which the `api` function serves at
 * `…/api/dashboard/`. Relative asset URLs (base './') work behind any mount path; everything the
 * page needs is bundled (no CDN), so it works offline beside the emulators.
 */
export default defineConfig({
  root: __dirname,
  base: './',
  publicDir: false,
  logLevel: 'warn',
  build: {
    outDir: resolve(__dirname, '../../lib/dashboard'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    assetsInlineLimit: 0,
  },
});
