import { defineConfig } from 'vitest/config';

// The CLI and the labs' child processes the tests start run under tsx, whose compile cache lives in
// the system temp dir (tsx-<uid>): off, so a test run leaves nothing there (as `npm start` does).
process.env.TSX_DISABLE_CACHE ??= '1';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // One engine set (Postgres + Kafka) per test run, shared by every test file.
    globalSetup: ['tests/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
