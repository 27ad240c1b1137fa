/** What the skew lab prints and charts: tables of the run's evidence, the report's charts, the `--out` tables. */
import type { ChartSpec, PersistTarget } from '../contract.ts';
import type { SkewFixture } from '../../fixtures/skew.ts';
import { partitionRows, type Detection, type RetryResult } from '../../pipelines/skew/index.ts';
import type { SparkRetryRun } from '../../pipelines/skew/spark-retry.ts';
import { fmt, round } from './claims.ts';
import { SKEW_PARAMS, type SkewState } from './scenario.ts';
import { findRun, sweepKnee } from './strategies.ts';

export function fixtureTable(fx: SkewFixture) {
  const n = fx.fact.id.length;
  let whale = 0;
  let hotAbsent = 0;
  for (let i = 0; i < n; i++) {
    if (fx.fact.key[i] === fx.whale) whale++;
    else if (fx.fact.key[i] === fx.hotAbsent) hotAbsent++;
  }
  return [
    {
      payments: fmt(n),
      merchants: fmt(fx.dim.key.length),
      'top merchant': `${fx.whale} (${((100 * whale) / n).toFixed(1)}%)`,
      'NULL merchant': `${fmt(fx.nullRows)} (${((100 * fx.nullRows) / n).toFixed(1)}%)`,
      'hot, not in merchants': `${fx.hotAbsent} (${((100 * hotAbsent) / n).toFixed(1)}%)`,
    },
  ];
}

export const detectionNote = (d: Detection) =>
  `${fmt(d.sampledRows)} sampled rows (${round(100 * d.effectiveRate, 1)}%) → ${d.hot.length} keys at ≥ ${d.hotShare * 100}% of rows; ${d.mustFind.length} keys at ≥ ${2 * d.hotShare * 100}% must all be found`;

export const detectionTable = (d: Detection, fx: SkewFixture) =>
  d.hot.map((h) => ({ merchant: h.key, sampled: h.sampled, estimated: h.estimatedCount, exact: h.exactCount, 'error %': round(100 * h.relError, 1), 'in merchants': fx.dim.key.includes(h.key) ? 'yes' : 'NO' }));

export const nativeTable = (s: SkewState) => s.native.map((n) => ({ join: n.joinType, rows: n.rows, 'DuckDB ms': round(n.ms, 0) }));

export const sparkNote = (sp: NonNullable<SkewState['spark']>) => `Spark ${sp.version}: ${sp.label}${sp.startupMs ? `, up in ${(sp.startupMs / 1000).toFixed(1)} s` : ''} — Spark UI ${sp.uiUrl}`;

export function strategiesTable(s: SkewState) {
  return s.runs
    .filter((r) => r.joinType === 'inner')
    .map((r) => ({
      strategy: r.strategy,
      tasks: r.tasks.length,
      'max/avg rows': round(r.ratio),
      'rows shuffled': r.rowsShuffled,
      broadcast: r.rowsBroadcast,
      'makespan ms': round(r.makespanMs, 1),
      ...(r.stageMs === undefined ? {} : { 'stage ms (2 cores)': round(r.stageMs, 0) }),
      'wall ms': round(r.wallMs, 0),
      'same answer (inner, left)': `${r.answer.equal ? '✔' : '✘'} ${findRun(s, r.strategy, 'left')!.answer.equal ? '✔' : '✘'}`,
    }));
}

export function sweepTable(s: SkewState) {
  const knee = sweepKnee(s.sweep);
  return s.sweep.map((p) => ({
    K: p.k,
    'rows shuffled': p.rowsShuffled,
    'merchant copies': p.dimCopies,
    'max/avg rows': round(p.ratio),
    'makespan (rows)': p.makespanRows,
    ...(p.makespanMs === null ? {} : { 'makespan ms': round(p.makespanMs, 1) }),
    '': p === knee ? '← knee' : '',
  }));
}

const retryRow = (r: RetryResult) => ({ 'map task': r.mapTask, rows: r.rows, 'moved reducer': r.moved, lost: r.lost, 'counted twice': r.duplicated });

export const retryTable = (retry: RetryResult, retryRand: RetryResult) => [
  { salt: 'under test', ...retryRow(retry) },
  { salt: 'rand() (contrast)', ...retryRow(retryRand) },
];

/** The retry trap on the cluster: an executor killed during the salted join. */
export function sparkRetryTable(runs: readonly SparkRetryRun[]) {
  return runs.map((r) => ({
    salt: r.salt === 'rand' ? 'rand() (textbook)' : 'hash(payment_id) (reference)',
    killed: r.killed ?? 'nothing (finished first)',
    'same answer as DuckDB': r.error ? `job failed: ${r.error}` : r.equal ? '✔' : `✘ ${r.rows} rows`,
    'fetch failures': r.fetchFailures,
    'stage attempts re-run': r.stageRetries,
    'their tasks': r.tasksInRetries,
    's': Math.round(r.ms / 100) / 10,
  }));
}

export function skewCharts(s: SkewState): ChartSpec[] {
  const plain = findRun(s, 'plain');
  const salted = findRun(s, 'salted');
  const P = SKEW_PARAMS.partitions;
  const charts: ChartSpec[] = [];
  if (plain && salted) {
    charts.push({
      kind: 'bar',
      id: 'skew-partition-rows',
      title: `Input rows per partition: plain vs salted (K = ${SKEW_PARAMS.saltFactor})`,
      x: 'partition',
      y: 'input rows',
      series: [
        { name: 'plain', points: partitionRows(plain.tasks, P).map((y, x) => ({ x, y })) },
        { name: `salted K=${SKEW_PARAMS.saltFactor}`, points: partitionRows(salted.tasks, P).map((y, x) => ({ x, y })) },
      ],
    });
  }
  if (s.sweep.length > 0) {
    const measured = s.sweep.every((p) => p.makespanMs !== null);
    const knee = sweepKnee(s.sweep);
    const marks = knee ? [{ x: knee.k, label: `knee K=${knee.k}` }] : [];
    charts.push({
      kind: 'line',
      id: 'skew-k-sweep',
      title: measured ? `K sweep: makespan on ${SKEW_PARAMS.executors} executors (ms, simulated from measured task times)` : 'K sweep: makespan (rows of the longest task chain)',
      x: 'K',
      y: measured ? 'makespan ms' : 'makespan rows',
      series: [{ name: 'salted', points: s.sweep.map((p) => ({ x: p.k, y: round((measured ? p.makespanMs : p.makespanRows)!, 2) })) }],
      marks,
    });
    charts.push({
      kind: 'line',
      id: 'skew-k-cost',
      title: 'K sweep: what K costs — merchant rows shipped (copies included)',
      x: 'K',
      y: 'merchant rows shuffled',
      series: [{ name: 'salted', points: s.sweep.map((p) => ({ x: p.k, y: p.dimCopies })) }],
      // The copies grow by the hot merchants' rows per K: small beside the total, invisible from zero.
      yFrom: 'data',
      marks,
    });
  }
  return charts;
}

export async function persistSkew(s: SkewState, out: PersistTarget): Promise<void> {
  await out.table(
    'skew_tasks',
    s.runs.flatMap((r) =>
      r.tasks.map((t) => ({
        strategy: r.strategy,
        join_type: r.joinType,
        task: t.name,
        partition: t.partition,
        kind: t.kind,
        fact_rows: t.factRows,
        dim_rows: t.dimRows,
        input_rows: t.inputRows,
        output_rows: t.outputRows,
        cpu_ms: round(t.ms, 3),
        wall_ms: round(t.wallMs, 3),
      })),
    ),
  );
  await out.table(
    'skew_strategies',
    s.runs.map((r) => ({
      strategy: r.strategy,
      join_type: r.joinType,
      tasks: r.tasks.length,
      max_over_avg_rows: round(r.ratio, 3),
      rows_shuffled: r.rowsShuffled,
      rows_broadcast: r.rowsBroadcast,
      makespan_ms_simulated: round(r.makespanMs, 3),
      makespan_rows: r.makespanRows,
      wall_ms: round(r.wallMs, 1),
      output_rows: r.outputRows,
      same_answer: r.answer.equal,
    })),
  );
  await out.table(
    'skew_k_sweep',
    s.sweep.map((p) => ({ k: p.k, rows_shuffled: p.rowsShuffled, merchant_copies: p.dimCopies, max_over_avg_rows: round(p.ratio, 3), makespan_rows: p.makespanRows, makespan_ms_simulated: p.makespanMs === null ? null : round(p.makespanMs, 3) })),
  );
  await out.table(
    'skew_hot_keys',
    (s.detection?.hot ?? []).map((h) => ({ merchant_id: h.key, sampled: h.sampled, estimated_count: h.estimatedCount, exact_count: h.exactCount, rel_error: round(h.relError, 4), in_merchants: s.fixture ? s.fixture.dim.key.includes(h.key) : null })),
  );
  await out.table('skew_native', s.native.map((n) => ({ join_type: n.joinType, rows: n.rows, ms: round(n.ms, 1) })));
}
