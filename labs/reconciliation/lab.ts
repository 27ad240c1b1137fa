import type { Lab } from '../contract.ts';
import { bisectingReconciler, type bisectDiff, type Reconciler } from '../../pipelines/reconciliation/index.ts';
import { injectDiscrepancies, rowsForScale } from '../../fixtures/reconciliation.ts';
import { equalData, fingerprintSensitivity, loadSides, ordersSource, parquetTarget, partitionLevel, reconcile, type ReconciliationState, type Sides } from './scenario.ts';
import { compareLevels, median } from './bench.ts';
import { BAR_ROWS, bisectionBeatsFullPull, bisectionFetchesLittle, findsAllInventsNone, fingerprintOrderIndependentSensitive, noFalseAlarms, partitionDaysNamed } from './claims.ts';
import { reconciliationPitfalls } from './pitfalls.ts';
import * as view from './view.ts';
import { reconciliationHints, reconciliationNudges } from './exercise/hints.ts';

const sides = (s: ReconciliationState): Sides => ({ source: s.source!, target: s.target! });

export const reconciliationLab: Lab<Reconciler, ReconciliationState> = {
  id: 'reconciliation',
  title: 'Reconciliation: find every difference between source and target, cheaply',
  question: 'How do you prove a migration or a pipeline lost nothing — across two different engines?',
  needs: ['postgres'],
  engines: ['duckdb'],
  reference: bisectingReconciler(),
  pitfalls: reconciliationPitfalls,
  newState: (ctx) => ({ rows: rowsForScale(ctx.scale), timings: {} }),
  // Every step only reads the source (the discrepancies go into the target): one per (seed, rows) serves every run.
  shared: [ordersSource],
  // Pitfalls and exercises: 10 000 rows at most — every kind of discrepancy, seconds per check.
  checkScale: (scale) => Math.min(0.1, scale * 0.1),
  steps: [
    {
      title: 'Load orders: source in PostgreSQL (NUMERIC, TIMESTAMPTZ, key order), target in DuckDB (DOUBLE, TIMESTAMP, padded text, load order)',
      async run(ctx, _impl, state) {
        Object.assign(state, await loadSides(ctx.shared(ordersSource), ctx.engines, state.rows, ctx.seed));
        ctx.out.note(view.loadNote(state));
      },
    },
    {
      title: 'Equal data, different types and row order: the reconciler must report nothing',
      async run(ctx, impl, state) {
        Object.assign(state, await equalData(impl, sides(state)));
        ctx.out.table(view.fingerprintTable(state));
        ctx.out.note(view.equalNote(state));
      },
    },
    {
      title: 'Fingerprint sensitivity: change one value per column (and NULL → \'\'), the fingerprint must move',
      async run(ctx, _impl, state) {
        state.perturbations = await fingerprintSensitivity(state.target!, state.equalFingerprints!.target.sum);
        ctx.out.table(state.perturbations.map((p) => ({ change: p.change, fingerprint_changed: p.changed })));
      },
    },
    {
      title: 'Inject seeded discrepancies of every kind into the target (0.01 % of rows)',
      async run(ctx, _impl, state) {
        state.truth = await injectDiscrepancies(state.target!.db, 'orders', state.rows, ctx.seed);
        ctx.out.note(view.truthNote(state.truth));
      },
    },
    {
      title: 'Reconcile: hash bisection — segment checksums in each database, split what differs, fetch small segments',
      async run(ctx, impl, state) {
        const { found, score, ms } = await reconcile(impl, sides(state), state.truth!);
        Object.assign(state, { found, score });
        state.timings.bisect_ms = ms;
        for (const line of view.reconcileNotes(found, ms)) ctx.out.note(line);
      },
    },
    {
      title: 'Per-day aggregates (count, distinct keys, sum/min/max, row-hash checksum) in each database',
      async run(ctx, _impl, state) {
        const { value, ms } = await partitionLevel(sides(state));
        state.partitions = value;
        state.timings.partitions_ms = ms;
        ctx.out.table(view.partitionTable(value), 8);
        ctx.out.note(view.partitionNote(value));
      },
    },
    {
      title: 'The levels side by side: what each finds and what it costs (count(*) is the floor)',
      benchmarkOnly: true,
      async run(ctx, impl, state) {
        const l = await compareLevels(impl, sides(state), state.truth!, state);
        const bisectMs = median(l.bisectRuns);
        Object.assign(state.timings, { count_ms: l.countMs, fullpull_ms: l.fullPullMs, bisect_ms: bisectMs, bisect_runs: l.bisectRuns.length });
        Object.assign(state, { levels: l.levels, fullPull: l.fullPull });
        ctx.out.table(view.levelsTable(l));
        for (const line of view.levelsNotes(l, bisectMs)) ctx.out.note(line);
      },
    },
    {
      title: 'Target as Parquet files read through DuckDB: the same reconciliation',
      benchmarkOnly: true,
      async run(ctx, impl, state) {
        state.parquet = await parquetTarget(impl, sides(state), state.truth!, ctx.workDir);
        ctx.out.note(view.parquetNote(state.parquet));
      },
    },
  ],
  claims: [
    {
      id: 'finds-all-invents-none',
      title: 'Finds all, invents none',
      statement:
        'With seeded discrepancies of every kind injected (missing, extra, duplicated key, changed value, NULL ↔ value, \'\' → NULL, amount beyond tolerance, trailing space and case where significant), the report holds exactly the injected set: precision 1, recall 1 — on a DuckDB table and on Parquet files.',
      check: findsAllInventsNone,
    },
    {
      id: 'no-false-alarms',
      title: 'No false alarms across engines',
      statement:
        'On equal data stored as NUMERIC vs DOUBLE (with float noise), TEXT vs padded VARCHAR (trailing spaces declared insignificant), TIMESTAMPTZ in a non-UTC session vs TIMESTAMP in UTC, and in different row orders, the reconciler reports no difference.',
      check: noFalseAlarms,
    },
    {
      id: 'bisection-fetches-little',
      title: 'Cheap when nearly equal: few rows moved',
      statement:
        'The reconciler moves at most 100 rows out of the databases per differing row: with 0.01 % of rows differing that is at most 1 % of the rows (0.5 %, both sides counted).',
      check: bisectionFetchesLittle,
    },
    {
      id: 'bisection-beats-full-pull',
      title: '≥ 5× faster than a full pull',
      statement:
        `At ${BAR_ROWS.toLocaleString('en-US')} rows per side and more (the scale the bar is set at: --scale 10), bisection finds the same differences at least 5× faster than pulling both tables and comparing them, measured in the same run: the median of three bisections against the faster of two full pulls. Smaller runs report the ratio without judging it — fixed costs weigh more there.`,
      benchmark: true,
      check: bisectionBeatsFullPull,
    },
    {
      id: 'fingerprint-order-independent-sensitive',
      title: 'Table fingerprint: order-blind, change-sensitive',
      statement:
        'The table fingerprint (exact sum of canonical row hashes) is equal for the same rows stored in another order, with other types, in another engine — and any single changed value (NULL → \'\' included) changes it.',
      check: fingerprintOrderIndependentSensitive,
    },
    {
      id: 'partition-days-named',
      title: 'Partition aggregates name exactly the bad days',
      statement:
        'Per-day aggregates computed in each database (count, distinct keys, sum/min/max of numeric columns within tolerance, row-hash checksum) name exactly the days holding an injected difference — no more, no fewer.',
      check: partitionDaysNamed,
    },
  ],
  metrics(s) {
    const score = s.score;
    const total = s.rows * 2;
    const bisect = s.timings.bisect_ms ?? NaN;
    const full = s.timings.fullpull_ms ?? NaN;
    const count = s.timings.count_ms ?? NaN;
    const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
    return {
      recon_rows: s.rows,
      recon_diffs_injected: s.truth?.length ?? 0,
      recon_diffs_found: s.found?.diffs.length ?? 0,
      recon_precision: score?.precision ?? 0,
      recon_recall: score?.recall ?? 0,
      recon_rows_fetched_fraction: round((s.found?.rowsFetched ?? 0) / total, 6),
      recon_bisect_ms: Math.round(bisect),
      recon_fullpull_ms: Math.round(full),
      recon_speedup: round(full / bisect),
      recon_count_ms: Math.round(count),
      recon_bisect_over_count: round(bisect / count),
    };
  },
  charts: view.reconciliationCharts,
  persist: view.persistReconciliation,
  exercise: {
    stub: 'labs/reconciliation/exercise/stub.ts',
    solution: 'pipelines/reconciliation/bisect.ts',
    load(mod) {
      if (typeof mod.bisectDiff !== 'function') throw new Error('export a function bisectDiff(source, target, spec, options)');
      return bisectingReconciler(mod.bisectDiff as typeof bisectDiff);
    },
    hints: reconciliationHints,
    nudges: reconciliationNudges,
  },
};

export type { ReconciliationState };
export const _forTests = { chartTree: view.chartTree, flattenTree: view.flattenTree };
