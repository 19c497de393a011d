import { defineConfig } from 'vitest/config';

// `npm run dev` proxies the lab protocol to a running `clusterlab serve` (LAB_URL, default :7300).
const lab = process.env.LAB_URL ?? 'http://127.0.0.1:7300';

export default defineConfig({
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022' },
  server: { proxy: { '/api': { target: lab, ws: true } } },
  test: { include: ['tests/**/*.test.ts'], environment: 'node' },
});
