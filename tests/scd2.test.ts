import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { scd2Lab } from '../labs/scd2/lab.ts';
import { scd2Pitfalls, withDialect } from '../labs/scd2/pitfalls.ts';
import { clearScenarioTables, createScenarioTables, referenceImpl, runScenario, type Scd2Impl, type ScenarioEvidence } from '../labs/scd2/scenario.ts';
import { atomicApply, factsJoinRightVersion, idempotent, noSpuriousVersions, oneCurrentRow, pointInTime, type1VersusType2 } from '../labs/scd2/claims.ts';
import { runLab, checkImplementation } from '../labs/runner.ts';
import { Reporter } from '../labs/reporter.ts';
import { addDays, type CustomerRow, type DailySnapshot, type OrderFact } from '../fixtures/scd2.ts';
import { applyScd2Snapshot, createDimension, dimensionFingerprint } from '../pipelines/scd2/index.ts';
import type { SqlEngine, TargetEngineName } from '../pipelines/engines/types.ts';
import { DuckDbEngine } from '../pipelines/engines/duckdb/driver.ts';
import { testContext, testEngines, expectAllOrNothing } from './helpers.ts';
import * as stub from '../labs/scd2/exercise/stub.ts';

const engines = testEngines();
afterAll(() => engines.stopAll());

const CLAIMS: Record<string, (ev: ScenarioEvidence) => { passed: boolean; counterexample?: string }> = {
  'point-in-time': pointInTime,
  'one-current-row': oneCurrentRow,
  idempotent,
  'no-spurious-versions': noSpuriousVersions,
  'type1-vs-type2': type1VersusType2,
  'facts-join-right-version': factsJoinRightVersion,
  'atomic-apply': atomicApply,
};

/** Which claims each pitfall must fail (the lab may find more). */
const EXPECTED_REJECTION: Record<string, string[]> = {
  'no-transaction': ['atomic-apply'],
  'neq-change-detection': ['point-in-time', 'type1-vs-type2'],
  'expire-then-insert-rerun': ['one-current-row', 'idempotent'],
  'stream-reinsert': ['idempotent', 'no-spurious-versions'],
  'inclusive-valid-to': ['point-in-time', 'facts-join-right-version'],
};

// ── Generated scenarios: up to 4 keys over up to 6 days, values from tiny pools with NULL ──────
const KEYS = 4;
const rowArb = fc.record({
  segment: fc.constantFrom<string | null>(null, 'gold', 'silver'),
  city: fc.constantFrom<string | null>(null, 'Oslo'),
  email: fc.constantFrom<string | null>(null, 'a@x', 'b@x'),
});
/** Per key and day: keep yesterday's row, drop the key (delete), or a row (new, edited or re-appearing). */
const cellArb = fc.oneof({ arbitrary: fc.constant('same' as const), weight: 3 }, { arbitrary: fc.constant('absent' as const), weight: 1 }, { arbitrary: rowArb, weight: 2 });
const dayArb = fc.record({ cells: fc.array(cellArb, { minLength: KEYS, maxLength: KEYS }), rerun: fc.boolean() });
const scenarioArb = fc.array(dayArb, { minLength: 1, maxLength: 6 });

type Day = { cells: ('same' | 'absent' | Omit<CustomerRow, 'customer_id'>)[]; rerun: boolean };

function toSnapshots(days: Day[]): { snapshots: DailySnapshot[]; orders: OrderFact[] } {
  const snapshots: DailySnapshot[] = [];
  const orders: OrderFact[] = [];
  let prev = new Map<number, CustomerRow>();
  days.forEach((day, i) => {
    const cur = new Map<number, CustomerRow>();
    day.cells.forEach((cell, k) => {
      const id = k + 1;
      if (cell === 'same') {
        const p = prev.get(id);
        if (p) cur.set(id, p);
      } else if (cell !== 'absent') cur.set(id, { customer_id: id, ...cell });
    });
    const date = addDays('2024-01-01', i);
    // The last day is always re-run too, so every scenario has a re-run for the idempotence claim.
    snapshots.push({ date, rows: [...cur.values()], rerun: day.rerun || i === days.length - 1 });
    for (const r of cur.values()) orders.push({ order_id: orders.length + 1, customer_id: r.customer_id, order_date: date, amount: 10 });
    prev = cur;
  });
  return { snapshots, orders };
}

function failedClaims(ev: ScenarioEvidence): { id: string; counterexample?: string }[] {
  return Object.entries(CLAIMS)
    .map(([id, check]) => ({ id, ...check(ev) }))
    .filter((c) => !c.passed)
    .map(({ id, counterexample }) => ({ id, counterexample }));
}

function describeDays(days: Day[]): string {
  return toSnapshots(days)
    .snapshots.map((s) => `${s.date}${s.rerun ? ' (+re-run)' : ''}: ${s.rows.map((r) => `${r.customer_id}=${r.segment ?? '∅'}/${r.city ?? '∅'}/${r.email ?? '∅'}`).join(' ') || '(empty)'}`)
    .join('\n    ');
}


const ENGINES: { engine: TargetEngineName; runs: number; seed: number }[] = [
  { engine: 'duckdb', runs: 40, seed: 3 },
  { engine: 'postgres', runs: 25, seed: 4 },
];

describe.each(ENGINES)('scd2 on $engine', ({ engine, runs, seed }) => {
  let db: SqlEngine;
  beforeAll(async () => {
    db = await engines.target(engine, 'scd2_test');
    await createScenarioTables(db);
  });

  const scenario = async (impl: Scd2Impl, days: Day[]) => {
    await clearScenarioTables(db);
    const { snapshots, orders } = toSnapshots(days);
    return runScenario(db, impl, snapshots, orders);
  };

  it('claims 1–7 hold for the reference load on any sequence of daily snapshots (new, edits, NULL ↔ value, deletes, re-appearances, re-runs, Type 1-only)', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (days) => {
        const failed = failedClaims(await scenario(referenceImpl, days));
        expect(failed, `snapshots:\n    ${describeDays(days)}`).toEqual([]);
      }),
      { numRuns: runs, seed },
    );
  });

  it('the one-MERGE load (the reference where each statement commits alone, Delta Lake) passes claims 1–7 here too, on any sequence', async () => {
    const oneStatement: Scd2Impl = { ...referenceImpl, applySnapshot: (x, t, d) => applyScd2Snapshot(withDialect(x, { atomicity: 'statement' }), t, d) };
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (days) => {
        const ev = await scenario(oneStatement, days);
        expect(failedClaims(ev), `snapshots:\n    ${describeDays(days)}`).toEqual([]);
        expect(ev.atomicity!.failurePoints).toBe(2); // the stage's key check, then the MERGE
      }),
      { numRuns: Math.round(runs / 2), seed },
    );
  });

  for (const pitfall of scd2Pitfalls) {
    it(`pitfall ${pitfall.name} is rejected by ${EXPECTED_REJECTION[pitfall.name]!.join(' and ')} (minimal counterexample printed)`, async () => {
      const result = await fc.check(
        fc.asyncProperty(scenarioArb, async (days) => failedClaims(await scenario(pitfall.impl, days)).length === 0),
        { numRuns: runs, seed },
      );
      expect(result.failed, `${pitfall.name} passed every claim on ${runs} generated scenarios`).toBe(true);
      const days = result.counterexample![0] as Day[];
      const failed = failedClaims(await scenario(pitfall.impl, days));
      // Shrinking is judged by any failing claim; the minimal case must still show the expected defect
      // — or, when it shrank to a different symptom, a second search for each expected claim must find one.
      for (const id of EXPECTED_REJECTION[pitfall.name]!) {
        if (failed.some((f) => f.id === id)) continue;
        const own = await fc.check(
          fc.asyncProperty(scenarioArb, async (d) => !failedClaims(await scenario(pitfall.impl, d)).some((f) => f.id === id)),
          { numRuns: runs, seed },
        );
        expect(own.failed, `${pitfall.name} is never rejected by ${id}`).toBe(true);
      }
      console.log(
        `[${engine}] ${pitfall.name}: minimal counterexample after ${result.numShrinks} shrinks\n    ${describeDays(days)}\n` +
          failed.map((f) => `  ✘ ${f.id}: ${f.counterexample}`).join('\n'),
      );
    });
  }

  it('the apply is one transaction: a failure after any statement leaves the previous state', async () => {
    await clearScenarioTables(db);
    const t = { dim: 'dim_customer', stage: 'stg_customer' };
    const stage = async (table: string, rows: (string | number | null)[][]) => {
      await db.exec(`DELETE FROM ${db.dialect.ident(table)}`);
      await db.insertRows(db.dialect.ident(table), ['customer_id', 'segment', 'city', 'email'], rows);
    };
    await stage(t.stage, [[1, 'gold', null, 'a@x'], [2, null, 'Oslo', null], [3, 'silver', 'Oslo', 'c@x']]);
    await applyScd2Snapshot(db, t, '2024-01-01');
    // Day 2 has every kind of change: a Type 2 edit (1), a Type 1 edit (2), a delete (3) and a new key (4).
    await stage(t.stage, [[1, 'silver', null, 'a@x'], [2, null, 'Oslo', 'b@x'], [4, 'gold', 'Oslo', null]]);
    const statements = await expectAllOrNothing(db, (x) => applyScd2Snapshot(x, t, '2024-01-02'), () => dimensionFingerprint(db, t.dim));
    expect(statements).toBeGreaterThanOrEqual(5); // the failure was injected after each of them
    expect((await dimensionFingerprint(db, t.dim)).rows).toBe(5);

    // The stage's primary key refuses a duplicate key at load; a stage without one is refused by the apply.
    await expect(stage(t.stage, [[1, 'gold', null, null], [1, 'silver', null, null]])).rejects.toThrow();
    const after = await dimensionFingerprint(db, t.dim);
    await db.exec('DROP TABLE IF EXISTS loose_stage');
    await db.exec(`CREATE TABLE loose_stage (customer_id ${db.dialect.types.bigint}, segment ${db.dialect.types.text}, city ${db.dialect.types.text}, email ${db.dialect.types.text})`);
    await stage('loose_stage', [[9, 'gold', null, null], [9, 'silver', null, null], [1, 'silver', null, 'a@x']]);
    await expect(applyScd2Snapshot(db, { dim: t.dim, stage: 'loose_stage' }, '2024-01-03')).rejects.toThrow(/customer_id 9 more than once/);
    expect(await dimensionFingerprint(db, t.dim)).toEqual(after);
  });

  it('surrogate keys: unique and above every earlier one, for dense business keys (offset from the smallest) and sparse 64-bit ones (numbered in order)', async () => {
    await clearScenarioTables(db);
    const t = { dim: 'dim_customer', stage: 'stg_customer' };
    const load = async (date: string, rows: (string | number | null)[][]) => {
      await db.exec(`DELETE FROM ${db.dialect.ident(t.stage)}`);
      await db.insertRows(db.dialect.ident(t.stage), ['customer_id', 'segment', 'city', 'email'], rows);
      const before = await db.query<{ sk: unknown }>(`SELECT COALESCE(MAX(customer_sk), 0) AS sk FROM ${db.dialect.ident(t.dim)}`);
      await applyScd2Snapshot(db, t, date);
      const opened = await db.query<{ sk: unknown }>(`SELECT customer_sk AS sk FROM ${db.dialect.ident(t.dim)} WHERE valid_from = CAST($1 AS DATE)`, [date]);
      return { max: Number(before[0]!.sk), opened: opened.map((r) => Number(r.sk)) };
    };
    const big = 2 ** 62; // keys ±2^62: max + (id − min + 1) would be 2^63 + 1, beyond BIGINT
    const days = [
      await load('2024-01-01', [[-big, 'gold', null, null], [7, 'gold', null, null], [big, 'silver', null, null]]),
      await load('2024-01-02', [[-big, 'silver', null, null], [7, 'gold', null, null], [big, 'gold', null, null], [2 ** 61, null, null, null]]),
      await load('2024-01-03', [[-big, 'silver', null, null], [7, 'silver', null, null], [8, null, null, null], [1000, null, null, null]]),
    ];
    expect(days.map((d) => d.opened.length)).toEqual([3, 3, 3]);
    for (const d of days) expect(Math.min(...d.opened)).toBeGreaterThan(d.max);
    const all = await db.query<{ sk: unknown }>(`SELECT customer_sk AS sk FROM ${db.dialect.ident(t.dim)}`);
    expect(new Set(all.map((r) => Number(r.sk))).size).toBe(all.length);
    // Day 3 is dense (ids 7 … 1000): offsets from the smallest opened id, gaps and all.
    expect(days[2]!.opened.sort((a, b) => a - b)).toEqual([1, 2, 994].map((o) => days[2]!.max + o));
  });

  it('a change-set work table left by an older version (no type1_changed column) is upgraded in place, and the load is right', async () => {
    await clearScenarioTables(db);
    const t = { dim: 'dim_upgrade', stage: 'stg_customer' };
    const { ident, types } = db.dialect;
    for (const name of [t.dim, `${t.dim}_changes`]) await db.exec(`DROP TABLE IF EXISTS ${ident(name)}`);
    await createDimension(db, t.dim);
    // The shape sessions before the Type 1 flag created: CREATE TABLE IF NOT EXISTS alone kept it.
    await db.exec(`CREATE TABLE ${ident(`${t.dim}_changes`)} (customer_id ${types.bigint} NOT NULL, action ${types.text} NOT NULL, segment ${types.text}, city ${types.text}, email ${types.text})`);
    const load = async (date: string, rows: (string | number | null)[][]) => {
      await db.exec(`DELETE FROM ${ident(t.stage)}`);
      await db.insertRows(ident(t.stage), ['customer_id', 'segment', 'city', 'email'], rows);
      await applyScd2Snapshot(db, t, date);
    };
    await load('2024-01-01', [[1, 'gold', null, 'old@x']]);
    await load('2024-01-02', [[1, 'silver', null, 'old@x']]);
    await load('2024-01-03', [[1, 'silver', null, 'new@x']]);
    const rows = await db.query<{ segment: string; email: string }>(`SELECT segment, email FROM ${ident(t.dim)} ORDER BY valid_from`);
    expect(rows).toEqual([{ segment: 'gold', email: 'new@x' }, { segment: 'silver', email: 'new@x' }]);
  });

  it('Type 1 on history: an email change overwrites every version of the key and opens none; a segment change opens one', async () => {
    await clearScenarioTables(db);
    const days: Day[] = [
      { cells: [{ segment: 'gold', city: null, email: 'old@x' }], rerun: false },
      { cells: [{ segment: 'silver', city: null, email: 'old@x' }], rerun: false },
      { cells: [{ segment: 'silver', city: null, email: 'new@x' }], rerun: false },
    ];
    const ev = await scenario(referenceImpl, days);
    expect(ev.dim.map((r) => [r.segment, r.email, r.valid_from, r.valid_to])).toEqual([
      ['gold', 'new@x', '2024-01-01', '2024-01-02'],
      ['silver', 'new@x', '2024-01-02', '9999-12-31'],
    ]);
    expect(failedClaims(ev)).toEqual([]);
  });
});

describe('lab scd2', () => {
  it('default run on DuckDB: claims pass, each pitfall rejected with a counterexample, metrics and chart, --out tables', async () => {
    const ctx = testContext(engines);
    try {
      const report = await runLab(scd2Lab, { seed: 7, scale: 0.3, provision: 'external', out: Reporter.silent(), engines, outDir: `${ctx.workDir}/out` });
      for (const c of report.claims) expect(c, `${c.id}: ${c.counterexample}`).toMatchObject({ passed: true });
      for (const p of report.pitfalls) {
        expect(p.rejectedBy, p.name).toEqual(expect.arrayContaining(EXPECTED_REJECTION[p.name]!));
        expect(p.counterexample, p.name).toMatch(/customer \d+/);
      }
      expect(Object.keys(report.metrics).sort()).toEqual(['scd2_apply_ms', 'scd2_apply_over_load', 'scd2_dim_rows', 'scd2_load_ms']);
      expect(report.metrics.scd2_dim_rows).toBeGreaterThan(3000);
      const chart = report.charts?.[0];
      expect(chart?.kind).toBe('timeline');
      if (chart?.kind === 'timeline') expect(chart.rows.length).toBeGreaterThan(0);
      const out = await DuckDbEngine.open(`${ctx.workDir}/out/scd2.duckdb`);
      try {
        const rows = await out.query<{ t: string; n: number }>(
          `SELECT 'dim' AS t, COUNT(*) AS n FROM scd2_dim_customer UNION ALL SELECT 'facts', COUNT(*) FROM scd2_fact_orders WHERE customer_sk IS NOT NULL UNION ALL SELECT 'src', COUNT(*) FROM scd2_source_snapshots`,
        );
        for (const r of rows) expect(r.n, r.t).toBeGreaterThan(0);
      } finally {
        await out.close();
      }
    } finally {
      ctx.cleanup();
    }
  });

  it('exercise: the untouched stub fails every claim; the reference loaded through exercise.load passes', async () => {
    const ctx = testContext(engines, { scale: 0.05 });
    try {
      const learner = await checkImplementation(scd2Lab, ctx, scd2Lab.exercise!.load(stub as Record<string, unknown>));
      expect(learner.claims.every((c) => !c.passed)).toBe(true);
      expect(learner.error).toMatch(/TODO/);
      const ref = await checkImplementation(scd2Lab, ctx, scd2Lab.exercise!.load({ applyScd2Snapshot }));
      for (const c of ref.claims) expect(c, c.id).toMatchObject({ passed: true });
      expect(Object.keys(scd2Lab.exercise!.nudges).sort()).toEqual(scd2Lab.claims.map((c) => c.id).sort());
    } finally {
      ctx.cleanup();
    }
  });
});
