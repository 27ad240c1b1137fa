import { requires, type ClaimResult, type Lab } from '../contract.ts';
import { Prng } from '../../fixtures/prng.ts';
import { DAYS, ordersPerDay, qualityBatches, type QualityFixture } from '../../fixtures/quality.ts';
import { compileExpectation, ORDERS_SUITE, type ExpectationCompiler } from '../../pipelines/quality/index.ts';
import type { ExpectationKind } from '../../pipelines/quality/suite.ts';
import { loadReference, referenceImpl, runScenario, type QualityImpl, type ScenarioEvidence } from './scenario.ts';
import { anomalyFitsSeries, criticalBlocks, everyIncidentCaught, incidentTally, nothingLost, nullAware } from './claims.ts';
import { benchmarkSuite, type BenchEvidence } from './bench.ts';
import { qualityPitfalls } from './pitfalls.ts';
import { cleanDaysLine, detectorTable, incidentTable, persistQuality, qualityCharts } from './view.ts';

export interface QualityState {
  fixture?: QualityFixture;
  scenario?: ScenarioEvidence;
  bench?: BenchEvidence;
}

/** The scenario's batches scale with --scale up to 2 (600 orders on a Monday); beyond, only the benchmark grows. */
export const scenarioScale = (scale: number) => Math.min(scale, 2);
/** Rows of the benchmark batch: 100,000 at scale 1, so --scale 10 gives the 1M rows the one-scan bar is set at. */
export const benchRows = (scale: number) => Math.max(10_000, Math.round(100_000 * scale));
export const BAR_ROWS = 1_000_000;
export const OVER_SCAN_BAR = 3;

/** The kinds the exercise asks for; the lab compiles the others with the reference. */
export const EXERCISE_KINDS: ReadonlySet<ExpectationKind> = new Set(['not_null', 'between', 'unique']);

const claim = (fn: (ev: ScenarioEvidence) => ClaimResult) => requires<QualityState, 'scenario'>('scenario', fn);

const round2 = (x: number) => Math.round(x * 100) / 100;

function oneScan(s: QualityState): ClaimResult {
  const b = s.bench;
  if (!b) return { passed: false, evidence: {}, counterexample: 'the benchmark did not run' };
  const ratio = round2(b.suiteMs / Math.max(b.floorMs, 0.001));
  const evidence = {
    rows: b.rows,
    expectations: b.expectations,
    scan_queries: b.scanQueries,
    suite_ms: Math.round(b.suiteMs),
    floor_ms: Math.round(b.floorMs),
    over_scan: ratio,
    per_expectation_over_scan: round2(b.perExpectationMs / Math.max(b.floorMs, 0.001)),
  };
  if (b.scanQueries !== 1) return { passed: false, evidence, counterexample: `the suite's ${b.expectations} expectations ran ${b.scanQueries} queries over the batch, not one` };
  if (b.rows < BAR_ROWS) return { passed: false, evidence, notJudged: `the ≤ ${OVER_SCAN_BAR}× bar is set at ${BAR_ROWS.toLocaleString('en-US')} rows (--scale 10); this run has ${b.rows.toLocaleString('en-US')}` };
  return {
    passed: ratio <= OVER_SCAN_BAR,
    evidence,
    ...(ratio > OVER_SCAN_BAR ? { counterexample: `the suite took ${Math.round(b.suiteMs)} ms over ${b.rows.toLocaleString('en-US')} rows, ${ratio}× one count(*) scan with the same filters (${Math.round(b.floorMs)} ms); the bar is ${OVER_SCAN_BAR}×` } : {}),
  };
}

export const qualityLab: Lab<QualityImpl, QualityState> = {
  id: 'quality',
  title: 'Data-quality gates: block bad batches, quarantine bad rows, lose nothing, alert on real anomalies only',
  question: 'How do you implement data-quality checks and monitoring end to end?',
  needs: [],
  engines: ['duckdb', 'postgres'],
  reference: referenceImpl,
  pitfalls: qualityPitfalls,
  newState: () => ({}),
  checkScale: (scale) => Math.min(scale, 0.5),
  steps: [
    {
      title: `Generate ${DAYS} daily order batches (seeded, weekly volume pattern) and the customers reference table; ten days carry an incident`,
      async run(ctx, _impl, state) {
        state.fixture = qualityBatches(new Prng(ctx.seed).fork('quality'), { scale: scenarioScale(ctx.scale) });
        const rows = state.fixture.days.reduce((n, d) => n + d.rows.length, 0);
        ctx.out.note(`${state.fixture.customers.length} customers · ${rows} orders over ${DAYS} days (~${ordersPerDay(scenarioScale(ctx.scale))} on a Monday, Friday ×1.3, weekend ×0.45–0.6)`);
        ctx.out.note(`suite: ${ORDERS_SUITE.length} expectations (${ORDERS_SUITE.filter((e) => e.severity === 'critical').length} critical, ${ORDERS_SUITE.filter((e) => e.severity === 'warning').length} warning) + the volume monitor`);
      },
    },
    {
      title: 'Gate each batch bronze → silver (one scan, one transaction), crash-drill one gate, rerun every batch, run the volume monitor',
      async run(ctx, impl, state) {
        const db = await ctx.engines.target(ctx.engine, 'quality');
        await loadReference(db, state.fixture!);
        state.scenario = await runScenario(db, impl, state.fixture!);
        ctx.out.table(incidentTable(state.scenario));
        ctx.out.note(cleanDaysLine(state.scenario));
        const lets = state.scenario.days.reduce((n, d) => n + d.notBetweenLetsThrough, 0);
        ctx.out.note(`NOT (amount BETWEEN 0 AND 1000000) is NULL — neither true nor false — for ${lets} bronze rows (every NULL amount); the suite counts them as their own outcome`);
      },
    },
    {
      title: 'The volume monitor against the two common rules, on the same series',
      async run(ctx, _impl, state) {
        ctx.out.table(detectorTable(state.scenario!));
      },
    },
    {
      title: 'Benchmark: the suite over one large batch vs one count(*) scan with the same filters',
      benchmarkOnly: true,
      async run(ctx, _impl, state) {
        const db = await ctx.engines.target(ctx.engine, 'quality_bench');
        state.bench = await benchmarkSuite(db, benchRows(ctx.scale));
        const b = state.bench;
        ctx.out.table([{ rows: b.rows, expectations: b.expectations, scan_queries: b.scanQueries, suite_ms: Math.round(b.suiteMs), floor_ms: Math.round(b.floorMs), over_scan: round2(b.suiteMs / b.floorMs), one_query_each_ms: Math.round(b.perExpectationMs) }]);
      },
    },
  ],
  claims: [
    {
      id: 'nothing-lost',
      title: 'Nothing lost',
      statement: 'For every batch, promoted + quarantined rows = bronze rows (a blocked batch is held whole in bronze), every quarantined row has its reasons; rerunning a batch, or a failure at any statement of its gate, changes nothing.',
      check: claim(nothingLost),
    },
    {
      id: 'critical-blocks',
      title: 'Critical blocks',
      statement: 'A batch failing a critical expectation has no row in silver (not some); every other batch is promoted.',
      check: claim(criticalBlocks),
    },
    {
      id: 'every-incident-caught',
      title: 'Every incident caught, no false alarm',
      statement: 'Each injected incident is reported by the expectation meant for it (row-level ones with the exact number of bad rows), and a clean day reports nothing.',
      check: claim(everyIncidentCaught),
    },
    {
      id: 'null-aware',
      title: 'NULL-aware',
      statement: 'Range, regex, set and reference checks count NULLs as their own outcome, exactly; no NULL in a required column reaches silver. NOT (amount BETWEEN …) lets every NULL through — the count is shown.',
      check: claim(nullAware),
    },
    {
      id: 'anomaly-fits-series',
      title: 'Anomaly check fits the series',
      statement: 'On a weekly series, the volume check flags the 40 % drop and the doubled load and nothing else; the 3-σ-over-last-4 and ±10 %-of-7-day-average rules each raise false alarms or miss (counted).',
      check: claim(anomalyFitsSeries),
    },
    {
      id: 'one-scan',
      title: 'One scan',
      statement: `The suite's row- and batch-level expectations cost one query over the batch, at most ${OVER_SCAN_BAR}× one plain count(*) scan with the same filters (judged at ${BAR_ROWS.toLocaleString('en-US')} rows).`,
      benchmark: true,
      check: oneScan,
    },
  ],
  metrics(s) {
    const tally = s.scenario ? incidentTally(s.scenario) : null;
    const b = s.bench;
    return {
      ...(b
        ? {
            quality_rows_per_s: Math.round(b.rows / (b.suiteMs / 1000)),
            quality_over_scan: round2(b.suiteMs / Math.max(b.floorMs, 0.001)),
            quality_per_expectation_over_scan: round2(b.perExpectationMs / Math.max(b.floorMs, 0.001)),
            quality_bench_rows: b.rows,
          }
        : {}),
      quality_false_alarms: tally?.falseAlarms.length ?? 0,
      quality_missed: tally?.missed.length ?? 0,
      quality_batches: s.scenario?.days.length ?? 0,
    };
  },
  charts: (s) => (s.scenario ? qualityCharts(s.scenario) : []),
  persist: async (s, out) => (s.scenario ? persistQuality(s.scenario, out) : undefined),
  exercise: {
    stub: 'labs/quality/exercise/stub.ts',
    solution: 'pipelines/quality/compile.ts',
    load(mod) {
      if (typeof mod.compileExpectation !== 'function') throw new Error('export a function compileExpectation(e, sql)');
      const learner = mod.compileExpectation as ExpectationCompiler;
      return { ...referenceImpl, compile: (e, sql) => (EXERCISE_KINDS.has(e.kind) ? learner(e, sql) : compileExpectation(e, sql)) };
    },
    hints: [
      'not_null is the simplest: failed and isNull are both `col IS NULL` — that expression is never NULL itself.',
      'between: write it as CASE WHEN col IS NULL THEN <TRUE if e.nulls is fail, else FALSE> WHEN col BETWEEN $a AND $b THEN FALSE ELSE TRUE END. NOT (col BETWEEN …) is NULL for a NULL col, and the row would pass.',
      'Bind the bounds: sql.param(e.min, \'numeric\'), sql.param(e.max, \'numeric\') give typed placeholders.',
      'unique is batch-level: aggregates { keyed: sum(CASE WHEN all key columns IS NOT NULL THEN 1 ELSE 0 END), distinct: count(DISTINCT CASE WHEN … THEN key END) } — for several columns the key is the tuple (a, b). The judge passes when keyed − distinct = 0.',
    ],
    nudges: {
      'nothing-lost': 'Every row of a promoted batch must land in silver or quarantine: a `failed` that can be NULL sends a row nowhere, or to silver unchecked.',
      'critical-blocks': 'A batch with duplicate order_ids must be blocked: check your unique aggregates (count(DISTINCT …) ignores NULLs; compare with the rows that have a key).',
      'every-incident-caught': 'Compare the failing counts with the bad rows of each incident day: out-of-range amounts, NULL amounts and duplicate keys must each be counted exactly.',
      'null-aware': 'A NULL amount is its own outcome: isNull must be TRUE for it, and with nulls: \'fail\' it must fail too.',
      'anomaly-fits-series': 'The volume check is not part of the exercise: this fails only if the gate blocked or lost batches the monitor needs.',
    },
  },
};
