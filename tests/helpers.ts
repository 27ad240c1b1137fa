import { expect, inject } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engines } from '../pipelines/engines/index.ts';
import type { AnyLab, LabContext } from '../labs/contract.ts';
import { Reporter } from '../labs/reporter.ts';
import { withShared } from '../labs/runner.ts';
import type { SqlEngine, TargetEngineName } from '../pipelines/engines/types.ts';
import { failingAfter, probeAllOrNothing } from '../pipelines/engines/faults.ts';
import { isDeepStrictEqual } from 'node:util';

/** Whether a process runs: gone, or a zombie waiting to be reaped (a container's init may never reap it), is not running. */
export function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Engines on the test run's shared Postgres and Kafka (and Snowflake emulator; see
 * global-setup.ts). Databases, topics, slots it creates are named per run and dropped by
 * `stopAll()`. `ownSnowflake`: this file starts its own emulator instead (fakesnow serves one
 * statement at a time, so two files applying at once would queue behind each other; a real
 * account is still used when set).
 */
export function testEngines(opts: { ownSnowflake?: boolean } = {}): Engines {
  return new Engines({
    mode: opts.ownSnowflake ? 'auto' : 'external',
    env: {
      ...process.env,
      PG_URL: inject('PG_URL'),
      KAFKA_BROKERS: inject('KAFKA_BROKERS'),
      DE_LAB_SNOWFLAKE_SERVER: opts.ownSnowflake ? undefined : inject('SNOWFLAKE_SERVER') || undefined,
    },
    log: () => undefined,
  });
}

/** A lab context for calling a lab's steps or checks directly from a test. */
export function testContext(engines: Engines, overrides: Partial<LabContext> = {}): LabContext & { cleanup(): void } {
  const workDir = mkdtempSync(join(tmpdir(), 'de-lab-test-'));
  const ctx = withShared({
    seed: 42,
    scale: 1,
    engine: 'duckdb' as TargetEngineName,
    engines,
    out: Reporter.silent(),
    mode: 'full',
    workDir,
    signal: new AbortController().signal,
    ...overrides,
  });
  return { ...ctx, cleanup: () => rmSync(workDir, { recursive: true, force: true }) };
}

export type { AnyLab };

export { failingAfter };

/**
 * Runs `apply` on `failingAfter(db, 0)`, `failingAfter(db, 1)`, … until it succeeds, checking after
 * each injected failure that `state()` still equals what it was before: all or nothing at every
 * statement boundary. Returns how many statements the successful apply ran through (how many
 * failure points were tested).
 */
export async function expectAllOrNothing<S>(db: SqlEngine, apply: (db: SqlEngine) => Promise<unknown>, state: () => Promise<S>): Promise<number> {
  const probe = await probeAllOrNothing(db, apply, state, isDeepStrictEqual);
  expect(probe.violation, `failure after statement ${probe.violation?.afterStatements}`).toBeUndefined();
  return probe.failurePoints;
}
