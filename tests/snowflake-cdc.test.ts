/**
 * The cdc lab with its apply side on the Snowflake engine (issue 8): Postgres → Kafka → Snowflake
 * MERGE, the fakesnow emulator in CI, a real account when SNOWFLAKE_* is set (tests/snowflake-setup.ts
 * provisions it for this file). Not a fork: the lab's own run, claim checks and pitfalls with
 * `--engine snowflake`; capture, Kafka and the apply processes are the same as on DuckDB.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cdcLab } from '../labs/cdc/lab.ts';
import { runLab } from '../labs/runner.ts';
import { Reporter } from '../labs/reporter.ts';
import type { LabReport } from '../labs/contract.ts';
import { snowflakeServer } from '../pipelines/engines/snowflake/target.ts';
import { testEngines } from './helpers.ts';

// Its own emulator: the cdc apply processes write while snowflake-scd2 may be running.
const engines = testEngines({ ownSnowflake: true });
afterAll(() => engines.stopAll());

/** The claims issue 8 asks for on Snowflake: convergence, redelivery, ordering by LSN. */
const SNOWFLAKE_CLAIMS = ['convergence', 'redelivery-harmless', 'ordering-by-lsn'];

let emulator = true;
let report: LabReport;
beforeAll(async () => {
  emulator = (await snowflakeServer(engines)).emulator;
});

describe('cdc with the apply on snowflake (Kafka → Snowflake MERGE)', () => {
  it('claims 1, 2 and 4 pass on Snowflake: the target converges, a replay applies nothing, same-ts_ms changes resolve by LSN', async () => {
    report = await runLab(cdcLab, { seed: 11, scale: 0.05, engine: 'snowflake', provision: 'external', out: Reporter.silent(), engines });
    const by = Object.fromEntries(report.claims.map((c) => [c.id, c]));
    for (const id of SNOWFLAKE_CLAIMS) expect(by[id], `${id}: ${by[id]?.counterexample ?? ''}`).toMatchObject({ passed: true });
    expect(by.convergence!.evidence).toMatchObject({ missing: 0, extra: 0, differing: 0, duplicated: 0 });
    expect(Number(by.convergence!.evidence.source_rows)).toBeGreaterThan(50);
    expect(by['redelivery-harmless']!.evidence).toMatchObject({ events_applied_again: 0, target_unchanged: true });
    expect(Number(by['ordering-by-lsn']!.evidence.keys_with_same_ts_changes)).toBeGreaterThan(0);
    expect(report.providers.snowflake).toMatch(emulator ? /^emulator \(fakesnow / : /^snowflake account /);
    // The other claims, reported (not part of issue 8's set on Snowflake; see README "Snowflake engine").
    console.log(`[snowflake ${report.providers.snowflake}] cdc claims: ${report.claims.map((c) => `${c.id}=${c.passed}`).join(' ')}`);
    // ~35 s alone on an idle 2-core machine; the emulator applies a few dozen events per second
    // and slows down most when the machine is busy, so this one test gets room (stalls still fail fast).
  }, 300_000);

  it('the same pitfalls are rejected on Snowflake, each with a counterexample', () => {
    const by = Object.fromEntries(report.pitfalls.map((p) => [p.name, p]));
    expect(Object.keys(by).sort()).toEqual(cdcLab.pitfalls.map((p) => p.name).sort());
    expect(by['dedup-by-ts-ms']!.rejectedBy).toContain('ordering-by-lsn');
    expect(by['commit-offsets-first']!.rejectedBy).toContain('crash-safety');
    expect(by['insert-only-creates']!.rejectedBy).toContain('convergence');
    expect(by['append-changes']!.rejectedBy).toEqual(expect.arrayContaining(['convergence', 'redelivery-harmless']));
    for (const p of report.pitfalls) {
      expect(p.error, p.name).toBeUndefined();
      expect(p.counterexample, p.name).toBeTruthy();
    }
  });

  it('metrics: sf_cdc_apply_events_per_s beside the lab metrics, labelled as emulator figures (sf_emulator) when on fakesnow', () => {
    expect(report.metrics.sf_cdc_apply_events_per_s).toBeGreaterThan(0);
    expect(report.metrics.sf_cdc_apply_events_per_s).toBe(report.metrics.cdc_e2e_events_per_s);
    expect(report.metrics.sf_emulator).toBe(emulator ? 1 : 0);
    console.log(`[snowflake ${report.providers.snowflake}] cdc metrics: ${JSON.stringify(report.metrics)}`);
  });
});
