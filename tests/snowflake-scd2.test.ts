/**
 * The scd2 lab on the Snowflake engine (issue 8): the fakesnow emulator in CI, a real account when
 * SNOWFLAKE_* is set (tests/snowflake-setup.ts provisions it for this file). Not a fork: the lab's
 * own run, claim checks, pitfalls and scenario helpers, with `--engine snowflake`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scd2Lab } from '../labs/scd2/lab.ts';
import { clearScenarioTables, createScenarioTables, referenceImpl, runScenario } from '../labs/scd2/scenario.ts';
import { factsJoinRightVersion, idempotent, noSpuriousVersions, oneCurrentRow, pointInTime, type1VersusType2 } from '../labs/scd2/claims.ts';
import { runLab } from '../labs/runner.ts';
import { Reporter } from '../labs/reporter.ts';
import type { LabReport } from '../labs/contract.ts';
import { Prng } from '../fixtures/prng.ts';
import { dailySnapshots, ordersFor } from '../fixtures/scd2.ts';
import { applyScd2Snapshot, dimensionFingerprint } from '../pipelines/scd2/index.ts';
import type { SqlEngine } from '../pipelines/engines/types.ts';
import { snowflakeServer } from '../pipelines/engines/snowflake/target.ts';
import { testEngines, expectAllOrNothing } from './helpers.ts';

const engines = testEngines();
afterAll(() => engines.stopAll());

const SEED = 7;
const SCALE = 0.05; // 50 keys over 8 days: every kind of change, every pitfall's defect, in seconds on the emulator

let emulator = true;
let sfReport: LabReport;
let duckReport: LabReport;

beforeAll(async () => {
  emulator = (await snowflakeServer(engines)).emulator;
});

describe('scd2 on snowflake (lab run, same seed as DuckDB)', () => {
  it('claims 1–7 pass on Snowflake (--engine snowflake: the lab run, benchmark included)', async () => {
    sfReport = await runLab(scd2Lab, { seed: SEED, scale: SCALE, engine: 'snowflake', provision: 'external', out: Reporter.silent(), engines });
    expect(sfReport.claims.map((c) => c.id)).toEqual(['point-in-time', 'one-current-row', 'idempotent', 'no-spurious-versions', 'type1-vs-type2', 'facts-join-right-version', 'atomic-apply']);
    for (const c of sfReport.claims) expect(c, `${c.id}: ${c.counterexample}`).toMatchObject({ passed: true });
    expect(sfReport.providers.snowflake).toMatch(emulator ? /^emulator \(fakesnow / : /^snowflake account /);
    // ~45 s on an idle 2-core machine: the emulator parses and transforms every statement in
    // Python, one at a time, and a busy machine slows it several-fold.
  }, 300_000);

  it('the same pitfalls are rejected on Snowflake, by the same claims as on DuckDB, each with a counterexample', async () => {
    duckReport = await runLab(scd2Lab, { seed: SEED, scale: SCALE, engine: 'duckdb', provision: 'external', out: Reporter.silent(), engines });
    expect(sfReport.pitfalls.map((p) => p.name)).toEqual(scd2Lab.pitfalls.map((p) => p.name));
    for (const p of sfReport.pitfalls) {
      expect(p.error, p.name).toBeUndefined();
      expect(p.rejectedBy.length, `${p.name} was not caught on Snowflake`).toBeGreaterThan(0);
      expect(p.counterexample, p.name).toMatch(/customer \d+/);
      expect(p.rejectedBy, p.name).toEqual(duckReport.pitfalls.find((d) => d.name === p.name)!.rejectedBy);
    }
  });

  it('metrics: sf_scd2_apply_ms beside the lab metrics, labelled as emulator figures (sf_emulator) when on fakesnow', () => {
    expect(sfReport.metrics.sf_scd2_apply_ms).toBeGreaterThan(0);
    expect(sfReport.metrics.sf_emulator).toBe(emulator ? 1 : 0);
    expect(sfReport.metrics.scd2_apply_ms).toBe(sfReport.metrics.sf_scd2_apply_ms);
    // Other engines report no sf_* metric.
    expect(Object.keys(duckReport.metrics).filter((k) => k.startsWith('sf_'))).toEqual([]);
    console.log(`[snowflake ${sfReport.providers.snowflake}] scd2 metrics: ${JSON.stringify(sfReport.metrics)}`);
  });
});

describe('scd2 on snowflake (scenario level)', () => {
  let sf: SqlEngine;
  beforeAll(async () => {
    sf = await engines.target('snowflake', 'sf_scd2');
    await createScenarioTables(sf);
  });

  it('the same snapshots give the same dimension on Snowflake as on DuckDB, version for version', async () => {
    const rng = new Prng(11).fork('scd2');
    const snapshots = dailySnapshots(rng.fork('snapshots'), { keys: 12, days: 5 });
    const orders = ordersFor(rng.fork('orders'), snapshots, 5);
    const duck = await engines.target('duckdb', 'sf_scd2_duck');
    await createScenarioTables(duck);
    const [onDuck, onSf] = [await runScenario(duck, referenceImpl, snapshots, orders), await runScenario(sf, referenceImpl, snapshots, orders)];
    expect(onSf.dim).toEqual(onDuck.dim);
    expect(onSf.asOf).toEqual(onDuck.asOf);
    expect(onSf.factJoin).toEqual(onDuck.factJoin);
    for (const check of [pointInTime, oneCurrentRow, idempotent, noSpuriousVersions, type1VersusType2, factsJoinRightVersion]) {
      expect(check(onSf), check.name).toMatchObject({ passed: true });
    }
    // The order-independent fingerprint (dialect hash64 + sumExact) agrees across engines too.
    expect(await dimensionFingerprint(sf, 'dim_customer')).toEqual(await dimensionFingerprint(duck, 'dim_customer'));
  });

  it('the apply is one Snowflake transaction (BEGIN … MERGE … COMMIT): a failure after any statement leaves the previous state', async () => {
    await clearScenarioTables(sf);
    const t = { dim: 'dim_customer', stage: 'stg_customer' };
    const stage = async (rows: (string | number | null)[][]) => {
      await sf.exec(`DELETE FROM ${sf.dialect.ident(t.stage)}`);
      await sf.insertRows(sf.dialect.ident(t.stage), ['customer_id', 'segment', 'city', 'email'], rows);
    };
    await stage([[1, 'gold', null, 'a@x'], [2, null, 'Oslo', null], [3, 'silver', 'Oslo', 'c@x']]);
    await applyScd2Snapshot(sf, t, '2024-01-01');
    // Day 2: a Type 2 edit (1), a Type 1 edit (2), a delete (3), a new key (4).
    await stage([[1, 'silver', null, 'a@x'], [2, null, 'Oslo', 'b@x'], [4, 'gold', 'Oslo', null]]);
    const statements = await expectAllOrNothing(sf, (x) => applyScd2Snapshot(x, t, '2024-01-02'), () => dimensionFingerprint(sf, t.dim));
    expect(statements).toBeGreaterThanOrEqual(3); // the failure was injected after the MERGE too
    expect((await dimensionFingerprint(sf, t.dim)).rows).toBe(5);
  });
});

