/**
 * The reconciliation lab on real engines: PostgreSQL source, DuckDB target (and Parquet).
 * One lab run (reference + the four pitfalls) backs the claim tests; a property test checks
 * bisection against a brute-force oracle on random small tables with random discrepancies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { reconciliationLab, _forTests } from '../labs/reconciliation/lab.ts';
import { runLab } from '../labs/runner.ts';
import { Reporter } from '../labs/reporter.ts';
import type { LabReport } from '../labs/contract.ts';
import { testEngines } from './helpers.ts';
import { bisectDiff, compareRowSets, fetchRows, renderDiffTable, scoreDiffs, type ReconSpec, type RowDiff, type TableSide } from '../pipelines/reconciliation/index.ts';
import { rangeFilter } from '../pipelines/reconciliation/bisect.ts';
import { createTargetOrders, injectDiscrepancies, INJECTION_LABELS, perKindForRows } from '../fixtures/reconciliation.ts';
import type { PgEngine } from '../pipelines/engines/postgres/driver.ts';
import type { DuckDbEngine } from '../pipelines/engines/duckdb/driver.ts';

const engines = testEngines();
afterAll(() => engines.stopAll());

const SCALE = 0.2; // 20 000 rows: every kind of discrepancy, quick on a busy 2-core machine
let report: LabReport;
const claim = (id: string) => report.claims.find((c) => c.id === id)!;
const pitfall = (name: string) => report.pitfalls.find((p) => p.name === name)!;

describe('lab reconciliation', () => {
  beforeAll(async () => {
    report = await runLab(reconciliationLab, { seed: 42, scale: SCALE, provision: 'external', out: Reporter.silent(), engines });
  });

  it('claim 1 (finds-all-invents-none): every injected kind is reported, nothing else — DuckDB table and Parquet', () => {
    expect(claim('finds-all-invents-none')).toMatchObject({ passed: true, evidence: { precision: 1, recall: 1, parquet_precision: 1, parquet_recall: 1 } });
    expect(report.metrics.recon_diffs_injected).toBe(INJECTION_LABELS.length * perKindForRows(report.metrics.recon_rows!));
    expect(report.metrics.recon_diffs_found).toBe(report.metrics.recon_diffs_injected);
  });

  it('claim 2 (no-false-alarms): equal data as NUMERIC/DOUBLE, TEXT/padded VARCHAR, TIMESTAMPTZ/TIMESTAMP, other row order → no difference', () => {
    expect(claim('no-false-alarms')).toMatchObject({ passed: true, evidence: { differences_reported: 0, days_named: 0 } });
  });

  it('claim 3 (bisection-fetches-little): at most 100 rows moved per differing row; the speed ratio is measured, not asserted', () => {
    const c = claim('bisection-fetches-little');
    expect(c.passed).toBe(true);
    expect(Number(c.evidence.rows_fetched)).toBeLessThanOrEqual(100 * Number(c.evidence.differing_rows));
    // Both sides counted: ≤ 100 rows per difference is ≤ 50 × the differing share (≤ 0.5 % at 0.01 %).
    const differingShare = report.metrics.recon_diffs_injected! / report.metrics.recon_rows!;
    expect(report.metrics.recon_rows_fetched_fraction).toBeLessThanOrEqual(50 * differingShare);
    // Timing is a benchmark (a ratio in metrics); here only that it was measured and the full pull agrees.
    // Its 5× bar is set at 1M rows: this smaller run reports the ratio without judging it.
    const speed = claim('bisection-beats-full-pull');
    expect(speed.evidence.full_pull_agrees).toBe(true);
    expect(speed).toMatchObject({ skipped: true, notJudged: expect.stringMatching(/bar is set at 1,000,000 rows/) });
    expect(report.metrics.recon_speedup).toBeGreaterThan(0);
    expect(report.metrics.recon_count_ms).toBeGreaterThanOrEqual(0);
  });

  it('claim 4 (fingerprint-order-independent-sensitive): same rows in two engines and orders → equal; each single change → different', () => {
    expect(claim('fingerprint-order-independent-sensitive')).toMatchObject({ passed: true, evidence: { cross_engine_equal: true, single_changes: 7, changed_fingerprint: 7 } });
  });

  it('claim 5 (partition-days-named): per-day aggregates name exactly the days holding differences; classic aggregates alone name fewer', () => {
    const c = claim('partition-days-named');
    expect(c.passed).toBe(true);
    expect(c.evidence.days_named).toBe(c.evidence.days_with_diffs);
    expect(Number(c.evidence.classic_aggregates_name)).toBeLessThan(Number(c.evidence.days_named));
  });

  it('pitfall neq-comparison is rejected: a NULL change is not reported', () => {
    const p = pitfall('neq-comparison');
    expect(p.rejectedBy).toContain('finds-all-invents-none');
    expect(p.counterexample).toMatch(/(null-to-value|value-to-null|empty-to-null).* was injected but not reported/);
  });

  it('pitfall key-set-difference is rejected: the duplicated key is not reported', () => {
    const p = pitfall('key-set-difference');
    expect(p.rejectedBy).toContain('finds-all-invents-none');
    expect(p.counterexample).toMatch(/\(duplicate, .* was injected but not reported/);
  });

  it('pitfall count-only is rejected: no differing key is named', () => {
    const p = pitfall('count-only');
    expect(p.rejectedBy).toEqual(['finds-all-invents-none']);
    expect(p.counterexample).toMatch(/not reported \(recall 0\/\d+\)/);
  });

  it('pitfall float-equality is rejected: equal amounts stored as NUMERIC and DOUBLE are reported as different', () => {
    const p = pitfall('float-equality');
    expect(p.rejectedBy).toEqual(expect.arrayContaining(['finds-all-invents-none', 'no-false-alarms']));
    expect(p.counterexample).toMatch(/reported key \d+: amount .* not an injected difference/);
  });

  it('reports the bisection tree (differing leaves fetched) for the HTML chart, and a readable terminal table', () => {
    const tree = report.charts!.find((c) => c.kind === 'tree');
    expect(tree).toBeDefined();
    const statuses: string[] = [];
    const walk = (n: { status: string; children?: unknown[] }) => {
      statuses.push(n.status);
      for (const c of (n.children ?? []) as (typeof n)[]) walk(c);
    };
    if (tree?.kind === 'tree') walk(tree.root);
    expect(statuses.filter((s) => s === 'fetched').length).toBeGreaterThan(0);
    expect(statuses).toContain('equal');
    const table = renderDiffTable([{ key: 7, kind: 'value', columns: [{ column: 'note', source: null, target: 'x' }] }, { key: 9, kind: 'duplicate', sourceCount: 1, targetCount: 2 }]);
    expect(table.split('\n')).toEqual([
      'key  kind       column  source    target',
      '───  ─────────  ──────  ────────  ────────',
      '  7  value      note    NULL      "x"',
      '  9  duplicate          1 row(s)  2 row(s)',
    ]);
    expect(_forTests.flattenTree({ lo: 0, hi: 9, sourceRows: 1, targetRows: 1, status: 'equal', children: [{ lo: 0, hi: 9, sourceRows: 1, targetRows: 1, status: 'equal' }] })).toHaveLength(1);
  });

  it('the 5× speed claim is judged from 1M rows on: below 5× it fails, at 5× it holds, a full pull that disagrees always fails', () => {
    const speedClaim = reconciliationLab.claims.find((c) => c.id === 'bisection-beats-full-pull')!;
    const fullPull = (agrees: boolean) => ({ score: { precision: agrees ? 1 : 0.5, recall: 1 }, rowsFetched: 0 }) as never;
    const judge = (rows: number, fullpull_ms: number, bisect_ms: number, agrees = true) =>
      speedClaim.check({ rows, fullPull: fullPull(agrees), timings: { fullpull_ms, bisect_ms, bisect_runs: 3 } } as never);
    expect(judge(1_000_000, 12_000, 2_500)).toMatchObject({ passed: false, counterexample: expect.stringMatching(/4\.80×/) });
    expect(judge(1_000_000, 12_500, 2_500)).toMatchObject({ passed: true });
    expect(judge(1_000_000, 12_500, 2_500).notJudged).toBeUndefined();
    expect(judge(100_000, 1_000, 300)).toMatchObject({ passed: false, notJudged: expect.any(String) });
    expect(judge(100_000, 9_000, 300, false)).toMatchObject({ passed: false, counterexample: expect.stringMatching(/full pull did not find/) });
    expect(judge(100_000, 9_000, 300, false).notJudged).toBeUndefined();
  });
});

describe('fixture', () => {
  it('injects the same discrepancies for the same seed, one key touched once, every kind present', async () => {
    const truths = [];
    for (let i = 0; i < 2; i++) {
      const db = await engines.duckdb();
      await createTargetOrders(db, 'orders', 5000, 9);
      truths.push(await injectDiscrepancies(db, 'orders', 5000, 9, 2));
    }
    expect(truths[1]).toEqual(truths[0]);
    expect(new Set(truths[0]!.map((t) => t.label))).toEqual(new Set(INJECTION_LABELS));
    expect(new Set(truths[0]!.map((t) => t.key)).size).toBe(truths[0]!.length);
  });
});

/**
 * Property: on any small source/target pair with any mix of discrepancies, bisection (deep: fanout 2,
 * threshold 2) reports exactly what a brute-force comparison of all rows reports.
 */
describe('bisection vs brute force (property)', () => {
  const spec: ReconSpec = {
    key: 'id',
    columns: [
      { name: 'name', kind: 'text', trailingSpaces: 'insignificant' },
      { name: 'price', kind: 'double', tolerance: 0.005 },
      { name: 'n', kind: 'int' },
    ],
  };
  let pg: PgEngine;
  let duck: DuckDbEngine;
  let tableNo = 0;
  beforeAll(async () => {
    pg = await engines.pg(undefined, 'recon_prop');
    duck = await engines.duckdb();
  });

  type Row = [number, string | null, string | null, number | null];
  const arbRow = (id: number) =>
    fc.tuple(
      fc.constant(id),
      fc.option(fc.constantFrom('', 'a', 'b', 'a b', 'x|y'), { nil: null }),
      fc.option(fc.integer({ min: 0, max: 9999 }).map((c) => (c / 100).toFixed(2)), { nil: null }),
      fc.option(fc.integer({ min: -3, max: 3 }), { nil: null }),
    ) as fc.Arbitrary<Row>;
  const arbCase = fc
    .uniqueArray(fc.integer({ min: 1, max: 400 }), { minLength: 0, maxLength: 40 })
    .chain((ids) => fc.tuple(fc.tuple(...ids.map(arbRow)) as fc.Arbitrary<Row[]>, fc.array(fc.tuple(fc.constantFrom('drop', 'dup', 'extra', 'change', 'null', 'pad', 'noise'), fc.nat(), arbRow(401)), { maxLength: 8 })));

  it('bisectDiff = compare all rows, for random tables and random discrepancies (PostgreSQL ↔ DuckDB)', async () => {
    await fc.assert(
      fc.asyncProperty(arbCase, async ([rows, edits]) => {
        // Target rows: the source's, edited; extra keys are beyond 400 or reuse free ids.
        let target = rows.map((r) => [...r] as Row);
        for (const [op, at, fresh] of edits) {
          if (target.length === 0 && op !== 'extra') continue;
          const i = at % Math.max(1, target.length);
          const r = target[i]!;
          if (op === 'drop') target.splice(i, 1);
          else if (op === 'dup') target.push([...r] as Row);
          else if (op === 'extra') target.push([401 + (at % 50), fresh[1], fresh[2], fresh[3]]);
          else if (op === 'change') r[3] = (r[3] ?? 0) + 1;
          else if (op === 'null') r[1] = r[1] === null ? 'z' : null;
          else if (op === 'pad' && r[1] !== null) r[1] = r[1] + '  ';
          else if (op === 'noise' && r[2] !== null) r[2] = String(Number(r[2]) + 0.001); // within tolerance
        }
        target = target.filter((r, i, all) => r[0] <= 400 || all.findIndex((x) => x[0] === r[0]) === i);
        const table = `p${tableNo++}`;
        await pg.exec(`CREATE TABLE ${table} (id BIGINT, name TEXT, price NUMERIC(10,2), n INTEGER)`);
        await duck.exec(`CREATE TABLE ${table} (id INTEGER, name VARCHAR, price DOUBLE, n BIGINT)`);
        await pg.insertRows(table, ['id', 'name', 'price', 'n'], rows);
        await duck.insertRows(table, ['id', 'name', 'price', 'n'], target.map((r) => [r[0], r[1], r[2] === null ? null : Number(r[2]), r[3]]));
        const source: TableSide = { label: 'source', db: pg, from: table };
        const tgt: TableSide = { label: 'target', db: duck, from: table };
        const all = [{ lo: -1, hi: 1_000_000 }];
        const [s, t] = await Promise.all([fetchRows(source, spec, all), fetchRows(tgt, spec, all)]);
        const oracle: RowDiff[] = compareRowSets(spec, s.rows, t.rows);
        const got = await bisectDiff(source, tgt, spec, { fanout: 2, fetchThreshold: 2 });
        const score = scoreDiffs(oracle, got.diffs);
        expect({ missed: score.missed, invented: score.invented }).toEqual({ missed: [], invented: [] });
        expect(got.diffs).toEqual(oracle);
      }),
      { numRuns: 25, seed: 1234 },
    );
  });

  it('a double column without a declared tolerance compares exactly: a change in the 7th significant digit is reported at every level (it once hid under a silent 1e-6 rounding)', async () => {
    const spec: ReconSpec = { key: 'id', columns: [{ name: 'ratio', kind: 'double' }] };
    const table = `dbl_exact_${Date.now()}`;
    const rows = Array.from({ length: 200 }, (_, i) => [i + 1, 0.1234567 + i]);
    await pg.exec(`CREATE TABLE ${table} (id BIGINT, ratio DOUBLE PRECISION)`);
    await duck.exec(`CREATE TABLE ${table} (id BIGINT, ratio DOUBLE)`);
    await pg.insertRows(table, ['id', 'ratio'], [...rows.slice(0, 50), [51, 0.1234567], ...rows.slice(51)]);
    await duck.insertRows(table, ['id', 'ratio'], [...rows.slice(0, 50), [51, 0.1234568], ...rows.slice(51)]);
    const got = await bisectDiff({ label: 'source', db: pg, from: table }, { label: 'target', db: duck, from: table }, spec, { fanout: 2, fetchThreshold: 2 });
    expect(got.diffs).toEqual([{ key: 51, kind: 'value', columns: [{ column: 'ratio', source: '0.1234567', target: '0.1234568' }] }]);
    // With a declared tolerance the same pair is equal (within it), and a tolerance the hash cannot honour is refused.
    const tolerant = await bisectDiff({ label: 'source', db: pg, from: table }, { label: 'target', db: duck, from: table }, { ...spec, columns: [{ name: 'ratio', kind: 'double', tolerance: 1e-6 }] });
    expect(tolerant.diffs).toEqual([]);
    await expect(bisectDiff({ label: 'source', db: pg, from: table }, { label: 'target', db: duck, from: table }, { ...spec, columns: [{ name: 'ratio', kind: 'double', tolerance: 1e-9 }] })).rejects.toThrow(/below the row hash's 1e-6 resolution.*leave it out to compare exactly/);
  });
});

describe('key-range filters', () => {
  it('the key-set form (DuckDB, many narrow ranges) selects exactly the rows the BETWEEN form selects', async () => {
    const duck = await engines.duckdb();
    await duck.exec(`CREATE TABLE kr AS SELECT CAST(i * 3 - 500 AS BIGINT) AS id FROM range(1000) t(i) UNION ALL SELECT CAST(7 AS BIGINT)`);
    const betweenOnly = { ...duck, dialect: { ...duck.dialect, keyRangeFilter: undefined } } as unknown as DuckDbEngine;
    const count = async (db: DuckDbEngine, ranges: { lo: number; hi: number }[]) => {
      const f = rangeFilter(db, 'id', ranges);
      return { sql: f.sql, n: Number((await duck.query<{ n: unknown }>(`SELECT count(*) AS n FROM kr WHERE ${f.sql}`, f.params))[0]!.n) };
    };
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: -600, max: 2600 }), fc.integer({ min: 0, max: 40 })), { minLength: 8, maxLength: 40 }), async (spans) => {
        const ranges = spans.map(([lo, w]) => ({ lo, hi: lo + w }));
        const keySet = await count(duck, ranges);
        const between = await count(betweenOnly, ranges);
        expect(between.sql).toMatch(/BETWEEN/);
        expect(keySet.n).toBe(between.n);
      }),
      { numRuns: 30, seed: 7 },
    );
    const ten = await count(duck, Array.from({ length: 10 }, (_, i) => ({ lo: i * 100, hi: i * 100 + 20 })));
    expect(ten.sql).toMatch(/IN \(SELECT unnest\(generate_series/);
    expect(ten.n).toBe((await count(betweenOnly, Array.from({ length: 10 }, (_, i) => ({ lo: i * 100, hi: i * 100 + 20 })))).n);
    // Few ranges, or ranges too wide to list, stay BETWEENs.
    expect((await count(duck, [{ lo: 0, hi: 9 }])).sql).toMatch(/BETWEEN/);
    expect((await count(duck, Array.from({ length: 8 }, (_, i) => ({ lo: i * 2 ** 30, hi: i * 2 ** 30 + 2 ** 29 })))).sql).toMatch(/BETWEEN/);
  });
});
