import { defineConfig } from 'vitest/config';

// The CLI and the labs' child processes the tests start run under tsx, whose compile cache lives in
// the system temp dir (tsx-<uid>): off, so a test run leaves nothing there (as `npm start` does).
process.env.TSX_DISABLE_CACHE ??= '1';

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'labs',
          include: ['tests/**/*.test.ts'],
          exclude: ['tests/spark.test.ts', 'tests/cdc-debezium-lab.test.ts'],
          // One engine set (Postgres + Kafka) per test run, shared by every test file.
          globalSetup: ['tests/global-setup.ts'],
          sequence: { groupOrder: 0 },
        },
      },
      // The spark engine's file: a Spark cluster (four JVMs, ~20 s to start), the skew lab, scd2's and
      // compaction's claims on Delta on it, ~14 min on two cores. Its own run (`npm run test:spark`, in CI after `npm test`): beside the
      // timing-sensitive labs (Kafka consumer groups, SIGKILL crash tests) it starved them — a
      // compaction sink missed its 60 s once in CI — and after them it pushed `npm test` past its
      // 6 minutes (378 s measured on an idle machine). Its own engines; no shared Postgres or Kafka.
      ...(process.env.DE_LAB_TEST_SPARK === '1' ? [{ extends: true as const, test: { name: 'spark', include: ['tests/spark.test.ts'], sequence: { groupOrder: 1 } } }] : []),
      // The cdc lab on real Debezium: its own run (`npm run test:debezium`, in CI after `npm test`).
      ...(process.env.DE_LAB_TEST_DEBEZIUM_LAB === '1'
        ? [{ extends: true as const, test: { name: 'debezium-lab', include: ['tests/cdc-debezium-lab.test.ts'], globalSetup: ['tests/global-setup.ts'], sequence: { groupOrder: 2 } } }]
        : []),
    ],
  },
});
