/**
 * Lab `skew`: every claim, every pitfall rejected with a one-row counterexample, inner and left
 * joins, and property tests over random small tables. Scales are small (100k payments and below):
 * the claims are row-based, so they hold — and fail — the same way at any scale.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { skewLab, SKEW_PARAMS } from '../labs/skew/lab.ts';
import { checkImplementation, runLab } from '../labs/runner.ts';
import { Reporter } from '../labs/reporter.ts';
import type { ClaimOutcome, LabReport } from '../labs/contract.ts';
import { generateSkewFixture, skewFixture } from '../fixtures/skew.ts';
import { Prng } from '../fixtures/prng.ts';
import {
  FIXED_STRATEGIES,
  NULL_KEY,
  detectHotKeys,
  executePlan,
  loadSkewTables,
  makespan,
  maxOverMean,
  retryMapTask,
  saltHotKeys,
  saltedStrategy,
  type JoinType,
  type SkewTables,
} from '../pipelines/skew/index.ts';
import { saltWithRand } from '../labs/skew/pitfalls.ts';
import { testContext, testEngines } from './helpers.ts';

const engines = testEngines();
afterAll(() => engines.stopAll());

const SEED = 42;
let report: LabReport;
const claim = (id: string) => report.claims.find((c) => c.id === id)!;

beforeAll(async () => {
  // A full run (every strategy, K sweep measured) on 100k payments, pitfalls judged separately below.
  report = await runLab(skewLab, { seed: SEED, scale: 0.05, provision: 'external', out: Reporter.silent(), engines, skipPitfalls: true });
}, 60_000);

describe('lab skew: claims on the reference', () => {
  it('claim detect-hot-keys: a 1% sample (≥ 20,000 rows) finds every key with ≥ 2× the hot share (recall 1.0) and reports the estimate error', () => {
    const c = claim('detect-hot-keys');
    expect(c.passed, c.counterexample).toBe(true);
    // 100k payments: 1% would be 1,000 rows, so the 20,000-row floor sets the rate.
    expect(c.evidence).toMatchObject({ sample_rate: 0.2, recall: 1 });
    expect(c.evidence.keys_over_2x as number).toBeGreaterThanOrEqual(5);
    expect(typeof c.evidence.max_error_pct_2x).toBe('number');
  });

  it('claim same-answer: all five strategies return the plain join’s rows, inner and left, NULL keys and missing hot merchants included; plain = DuckDB', () => {
    const c = claim('same-answer');
    expect(c.passed, c.counterexample).toBe(true);
    expect(c.evidence).toMatchObject({ comparisons: 10, equal: 10, plain_matches_duckdb: true });
    expect(c.evidence.null_key_rows as number).toBeGreaterThan(0);
    expect(c.evidence.hot_absent_rows as number).toBeGreaterThan(0);
    // The left join keeps every payment; the inner join drops NULL keys and unknown merchants.
    expect(c.evidence.duckdb_left_rows).toBe(100_000);
    expect(c.evidence.duckdb_inner_rows as number).toBeLessThan(100_000 - (c.evidence.null_key_rows as number) - (c.evidence.hot_absent_rows as number) + 1);
  });

  it('claim detect-hot-keys at the default 2M payments: exactly a 1% sample, recall 1.0', () => {
    const fx = skewFixture(SEED, 1);
    const d = detectHotKeys(fx.fact, { sampleRate: 0.01, minSampleRows: SKEW_PARAMS.minSampleRows, hotShare: SKEW_PARAMS.hotShare }, new Prng(SEED).fork('skew-sample'));
    expect(d.effectiveRate).toBe(0.01);
    expect(d.mustFind.length).toBeGreaterThanOrEqual(5);
    expect(d.recall).toBe(1);
    expect(d.hotKeys.has(fx.whale) && d.hotKeys.has(fx.hotAbsent)).toBe(true);
  });

  it('claim balance: max/avg partition rows ≥ 6 before salting, ≤ 1.5 after', () => {
    const c = claim('balance');
    expect(c.passed, c.counterexample).toBe(true);
    expect(c.evidence.ratio_before as number).toBeGreaterThanOrEqual(SKEW_PARAMS.minRatioBefore);
    expect(c.evidence.ratio_after as number).toBeLessThanOrEqual(SKEW_PARAMS.maxRatioAfter);
  });

  it('claim makespan: with E = P executors the simulated makespan improves ≥ 3× — asserted on rows (deterministic), timings only reported', () => {
    const c = claim('makespan');
    expect(c.evidence.basis).toBe('simulated from measured task times');
    expect(c.evidence.speedup_by_rows as number).toBeGreaterThanOrEqual(SKEW_PARAMS.minSpeedup);
    expect(c.evidence.makespan_plain_ms as number).toBeGreaterThan(0);
    expect(report.metrics).toHaveProperty('skew_makespan_speedup');
  });

  it('claim cost-of-k: rows shuffled grow with K by K−1 copies of each hot merchant, and the sweep has a knee below the largest K', () => {
    const c = claim('cost-of-k');
    expect(c.passed, c.counterexample).toBe(true);
    expect(c.evidence.knee_k as number).toBeLessThan(SKEW_PARAMS.kSweep[SKEW_PARAMS.kSweep.length - 1]!);
    expect(c.evidence.rows_shuffled_kmax as number).toBeGreaterThan(c.evidence.rows_shuffled_knee as number);
    const sweep = report.charts!.find((ch) => ch.id === 'skew-k-cost')!;
    expect(sweep.kind).toBe('line');
  });

  it('claim retry-determinism: a row-identity salt sends no row elsewhere on a retry; a rand() salt loses and duplicates rows', () => {
    const c = claim('retry-determinism');
    expect(c.passed, c.counterexample).toBe(true);
    expect(c.evidence).toMatchObject({ moved: 0, lost: 0, duplicated: 0 });
    expect(c.evidence.rand_lost as number).toBeGreaterThan(0);
    expect(c.evidence.rand_duplicated as number).toBeGreaterThan(0);
  });

  it('reports the metrics the issue names, and both charts', () => {
    expect(Object.keys(report.metrics).sort()).toEqual(
      ['skew_makespan_speedup', 'skew_native_join_ms', 'skew_ratio_after', 'skew_ratio_before', 'skew_rows_joined', 'skew_salted_over_native', 'skew_salted_wall_ms'].sort(),
    );
    expect(report.metrics.skew_rows_joined).toBe(claim('same-answer').evidence.duckdb_inner_rows);
    const bar = report.charts!.find((ch) => ch.id === 'skew-partition-rows');
    expect(bar?.kind === 'bar' && bar.series.map((s) => s.points.length)).toEqual([16, 16]);
  });
});

describe('lab skew: pitfalls rejected by the same checks (check mode, 100k payments)', () => {
  const judge = async (impl: unknown) => {
    const ctx = testContext(engines, { seed: SEED, scale: 1 });
    try {
      return await checkImplementation(skewLab, ctx, impl);
    } finally {
      ctx.cleanup();
    }
  };
  const failed = (claims: ClaimOutcome[]) => claims.filter((c) => !c.passed && !c.skipped).map((c) => c.id);
  const pitfall = (name: string) => skewLab.pitfalls.find((p) => p.name === name)!.impl;

  it('the reference passes every non-benchmark claim in check mode', async () => {
    const { claims, error } = await judge(skewLab.reference);
    expect(error).toBeUndefined();
    expect(failed(claims)).toEqual([]);
  });

  it('pitfall rand-salt-under-retry: rejected by retry-determinism, with one payment that is lost or counted twice', async () => {
    const { claims } = await judge(pitfall('rand-salt-under-retry'));
    expect(failed(claims)).toEqual(['retry-determinism']);
    const c = claims.find((x) => x.id === 'retry-determinism')!;
    expect(c.counterexample).toMatch(/^payment \d+ \(merchant \d+\) goes to reducer \d+ on attempt 1 and \d+ on the retry — (lost|counted twice)/);
    expect((c.evidence.lost as number) + (c.evidence.duplicated as number)).toBeGreaterThan(0);
  });

  it('pitfall independent-random-salts: rejected by same-answer — a hot payment that loses its merchant', async () => {
    const { claims } = await judge(pitfall('independent-random-salts'));
    expect(failed(claims)).toEqual(expect.arrayContaining(['same-answer', 'retry-determinism']));
    expect(claims.find((x) => x.id === 'same-answer')!.counterexample).toMatch(/^inner join, salted: payment \d+ \(merchant_id \d+ \(hot\)\): expected \(payment \d+, merchant \d+\), got no row/);
  });

  it('pitfall salt-every-key: rejected by cost-of-k — every merchant copied K times for no real balance gain', async () => {
    const { claims } = await judge(pitfall('salt-every-key'));
    expect(failed(claims)).toEqual(['cost-of-k']);
    expect(claims.find((x) => x.id === 'cost-of-k')!.counterexample).toMatch(/^K=16 shipped [\d,]+ merchant rows for [\d,]+ merchants .* with only the hot keys salted/);
  });

  it('pitfall drop-null-keys: rejected by same-answer — a left-join payment with a NULL merchant is missing', async () => {
    const { claims } = await judge(pitfall('drop-null-keys'));
    expect(failed(claims)).toEqual(['same-answer']);
    expect(claims.find((x) => x.id === 'same-answer')!.counterexample).toMatch(/^left join, salted: payment \d+ \(merchant_id NULL\): expected \(payment \d+, merchant ∅\), got no row/);
  });

  it('the untouched exercise stub fails every claim (it throws)', async () => {
    const stub = await import('../labs/skew/exercise/stub.ts');
    const { claims, error } = await judge(skewLab.exercise!.load(stub));
    expect(error).toMatch(/TODO/);
    expect(failed(claims).length).toBe(skewLab.claims.length);
  });
});

/** The oracle: a nested-loop join, as (fact row, dim row or -1) pairs, sorted. */
function nestedLoopJoin(t: SkewTables, joinType: JoinType): string[] {
  const out: string[] = [];
  t.fact.key.forEach((k, f) => {
    let matched = false;
    t.dim.key.forEach((dk, d) => {
      if (k !== NULL_KEY && dk === k) {
        out.push(`${f}:${d}`);
        matched = true;
      }
    });
    if (!matched && joinType === 'left') out.push(`${f}:-1`);
  });
  return out.sort();
}

const tablesArb = fc
  .record({
    factKeys: fc.array(fc.oneof({ weight: 1, arbitrary: fc.constant(NULL_KEY) }, { weight: 3, arbitrary: fc.constantFrom(1, 1, 1, 1, 2, 2, 3, 4, 5, 6) }), { maxLength: 60 }),
    dimKeys: fc.uniqueArray(fc.integer({ min: 1, max: 6 }), { maxLength: 6 }),
    hot: fc.uniqueArray(fc.integer({ min: 1, max: 6 }), { maxLength: 3 }),
    partitions: fc.integer({ min: 1, max: 6 }),
    saltFactor: fc.integer({ min: 1, max: 8 }),
    mapTasks: fc.integer({ min: 1, max: 4 }),
    joinType: fc.constantFrom<JoinType>('inner', 'left'),
    seed: fc.integer({ min: 0, max: 1000 }),
  })
  .map((r) => ({
    ...r,
    tables: {
      fact: { id: Int32Array.from(r.factKeys, (_, i) => 100 + i), key: Int32Array.from(r.factKeys), amountCents: Int32Array.from(r.factKeys, (_, i) => i) },
      dim: { key: Int32Array.from(r.dimKeys), segment: Uint8Array.from(r.dimKeys, () => 1) },
    } satisfies SkewTables,
  }));

type Case = typeof tablesArb extends fc.Arbitrary<infer T> ? T : never;

describe('lab skew: properties (fast-check)', () => {
  it('for all small tables, every strategy — salted with any K, P, hot set — returns exactly the nested-loop join’s rows (inner and left)', () => {
    fc.assert(
      fc.property(tablesArb, (c) => {
        const expected = nestedLoopJoin(c.tables, c.joinType);
        const opts = { joinType: c.joinType, partitions: c.partitions, mapTasks: c.mapTasks, hotKeys: new Set(c.hot), saltFactor: c.saltFactor, seed: c.seed };
        for (const s of [...FIXED_STRATEGIES, saltedStrategy(saltHotKeys)]) {
          const out = executePlan(c.tables, s.plan(c.tables, opts), { joinType: c.joinType }).output;
          const got = Array.from({ length: out.n }, (_, i) => `${out.fact[i]}:${out.dim[i]}`).sort();
          expect(got, s.name).toEqual(expected);
        }
      }),
      { numRuns: 150, seed: SEED },
    );
  });

  it('for all small tables, a retried map task routes every row as before with the row-identity salt', () => {
    fc.assert(
      fc.property(tablesArb, (c) => {
        const opts = { joinType: c.joinType, partitions: c.partitions, mapTasks: c.mapTasks, hotKeys: new Set(c.hot), saltFactor: c.saltFactor, seed: c.seed };
        for (let m = 0; m < Math.min(c.mapTasks, c.factKeys.length); m++) expect(retryMapTask(c.tables, saltHotKeys, opts, m).moved).toBe(0);
      }),
      { numRuns: 100, seed: SEED },
    );
  });

  // Each pitfall, run through the same property, fails — and fast-check shrinks the failure to a
  // one- or two-row input: the minimal counterexample.
  const pitfallImpl = (name: string) => skewLab.pitfalls.find((p) => p.name === name)!.impl.saltHotKeys;
  const optsOf = (c: Case) => ({
    joinType: c.joinType,
    partitions: c.partitions,
    mapTasks: c.mapTasks,
    hotKeys: new Set(c.hot),
    saltFactor: c.saltFactor,
    seed: c.seed,
  });
  const shrunk = (prop: (c: Case) => boolean) => {
    const run = fc.check(fc.property(tablesArb, prop), { numRuns: 300, seed: SEED });
    expect(run.failed).toBe(true);
    return run.counterexample![0];
  };
  const sameAsNestedLoop = (impl: ReturnType<typeof pitfallImpl>) => (c: Case) => {
    const out = executePlan(c.tables, saltedStrategy(impl).plan(c.tables, optsOf(c)), { joinType: c.joinType }).output;
    const got = Array.from({ length: out.n }, (_, i) => `${out.fact[i]}:${out.dim[i]}`).sort();
    return JSON.stringify(got) === JSON.stringify(nestedLoopJoin(c.tables, c.joinType));
  };

  it('pitfall drop-null-keys shrinks to one payment with a NULL merchant in a left join', () => {
    const c = shrunk(sameAsNestedLoop(pitfallImpl('drop-null-keys')));
    expect(c.factKeys).toEqual([NULL_KEY]);
    expect(c.joinType).toBe('left');
  });

  it('pitfall independent-random-salts shrinks to one hot payment and its merchant', () => {
    const c = shrunk(sameAsNestedLoop(pitfallImpl('independent-random-salts')));
    expect(c.factKeys.length).toBe(1);
    expect(c.dimKeys).toContain(c.factKeys[0]);
    expect(c.hot).toContain(c.factKeys[0]);
    expect(c.saltFactor).toBeGreaterThanOrEqual(2);
  });

  it('pitfall salt-every-key shrinks to one cold merchant copied K ≥ 2 times', () => {
    const c = shrunk((c) => {
      const plan = saltedStrategy(pitfallImpl('salt-every-key')).plan(c.tables, optsOf(c));
      const copies = plan.tasks.reduce((n, t) => n + t.dim.length, 0);
      const hotDim = c.dimKeys.filter((k) => c.hot.includes(k)).length;
      return copies <= c.dimKeys.length + (c.saltFactor - 1) * hotDim;
    });
    expect(c.dimKeys.length).toBe(1);
    expect(c.hot).not.toContain(c.dimKeys[0]);
    expect(c.saltFactor).toBeGreaterThanOrEqual(2);
  });

  it('pitfall rand-salt-under-retry shrinks to a map task of two hot payments', () => {
    const c = shrunk((c) => {
      const opts = optsOf(c);
      for (let m = 0; m < Math.min(c.mapTasks, c.factKeys.length); m++) if (retryMapTask(c.tables, pitfallImpl('rand-salt-under-retry'), opts, m).moved > 0) return false;
      return true;
    });
    expect(c.factKeys.length).toBe(2);
    expect(c.hot.length).toBeGreaterThan(0);
  });

  it('the rand() salt is caught by the same retry on a small map task of hot rows', () => {
    const keys = Array.from({ length: 40 }, () => 1);
    const tables: SkewTables = { fact: { id: Int32Array.from(keys, (_, i) => i + 1), key: Int32Array.from(keys), amountCents: new Int32Array(40) }, dim: { key: Int32Array.of(1), segment: Uint8Array.of(0) } };
    const r = retryMapTask(tables, saltWithRand, { joinType: 'inner', partitions: 8, mapTasks: 1, hotKeys: new Set([1]), saltFactor: 8, seed: SEED }, 0);
    expect(r.moved).toBeGreaterThan(0);
  });
});

describe('lab skew: engine and scheduling details', () => {
  it('the plain executor returns row for row what DuckDB’s own LEFT JOIN returns', async () => {
    const fx = generateSkewFixture(7, 0.002);
    const db = await engines.duckdb();
    await loadSkewTables(db, fx);
    const duck = await db.query<{ payment_id: number; m: number | null }>(
      'SELECT p.payment_id, m.merchant_id AS m FROM payments p LEFT JOIN merchants m ON m.merchant_id = p.merchant_id',
    );
    const plain = FIXED_STRATEGIES.find((s) => s.name === 'plain')!;
    const opts = { joinType: 'left' as const, partitions: 4, mapTasks: 3, hotKeys: new Set<number>(), saltFactor: 1, seed: 1 };
    const out = executePlan(fx, plain.plan(fx, opts), { joinType: 'left' }).output;
    const ours = Array.from({ length: out.n }, (_, i) => `${fx.fact.id[out.fact[i]!]}:${out.dim[i]! < 0 ? 'null' : fx.dim.key[out.dim[i]!]}`).sort();
    expect(ours).toEqual(duck.map((r) => `${r.payment_id}:${r.m ?? 'null'}`).sort());
    expect(ours.length).toBe(fx.fact.id.length);
  });

  it('makespan schedules tasks in order on the first free executor; max/avg is 1 when balanced', () => {
    expect(makespan([10, 1, 1, 1], 2)).toBe(10);
    expect(makespan([3, 3, 3, 3], 2)).toBe(6);
    expect(makespan([5, 5, 5], 16)).toBe(5);
    expect(maxOverMean([4, 4, 4, 4])).toBe(1);
    expect(maxOverMean([13, 1, 1, 1])).toBe(3.25);
  });

  it('the fixture is seeded: same seed, same bytes; the top merchant holds ~40%', () => {
    const a = generateSkewFixture(9, 0.01);
    const b = generateSkewFixture(9, 0.01);
    expect(Buffer.from(a.fact.key.buffer).equals(Buffer.from(b.fact.key.buffer))).toBe(true);
    const whale = a.fact.key.filter((k) => k === a.whale).length / a.fact.key.length;
    expect(whale).toBeGreaterThan(0.38);
    expect(whale).toBeLessThan(0.42);
    expect(a.dim.key.includes(a.hotAbsent)).toBe(false);
  });
});
