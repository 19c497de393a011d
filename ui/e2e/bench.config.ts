import { defineConfig } from 'vitest/config';

// `npm run bench:ui`: the responsiveness benchmark, kept out of `npm test` and `npm run e2e`.
export default defineConfig({
  test: { include: ['e2e/**/*.bench.ts'], testTimeout: 900_000, hookTimeout: 300_000, fileParallelism: false },
});
