import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { include: ['e2e/**/*.e2e.ts'], testTimeout: 240_000, hookTimeout: 90_000, fileParallelism: false },
});
