import { defineConfig } from 'vite';

// Preact through esbuild's automatic JSX runtime: no framework plugin needed.
// `hark serve` embeds dist/ and serves it at "/", so the base is "/".
export default defineConfig({
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // No inline module preload polyfill: the CSP allows only 'self' scripts.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  server: {
    // `npm run dev` next to a running `hark serve` on :8080.
    proxy: { '/v1': { target: 'http://127.0.0.1:8080', ws: true } },
  },
});
