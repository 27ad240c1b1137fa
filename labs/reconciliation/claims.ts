/**
 * The reconciliation lab's claims, as pure checks over the run's evidence. A check whose step did
 * not run fails with that as its counterexample (`requires`).
 */
import { requires, type ClaimResult } from '../contract.ts';
import { identityOf, type RowDiff, type Score } from '../../pipelines/reconciliation/index.ts';
import { rowsForScale, type TruthEntry } from '../../fixtures/reconciliation.ts';
import type { ReconciliationState as S } from './scenario.ts';

/** Where the issue sets the speed bar: 1M rows per side. */
export const BAR_ROWS = 1_000_000;
const ROWS_PER_SCALE = rowsForScale(1);

export const pct = (x: number) => Math.round(x * 1e6) / 1e4; // fraction → % with 4 decimals
const describeTruth = (t: TruthEntry) => `key ${t.key} (${t.label}${t.columns ? ': ' + t.columns.join(',') : ''}, ${t.day})`;

export function describeDiff(d: RowDiff): string {
  if (d.kind === 'value') return `key ${d.key}: ${(d.columns ?? []).map((c) => `${c.column} ${c.source === null ? 'NULL' : JSON.stringify(c.source)} → ${c.target === null ? 'NULL' : JSON.stringify(c.target)}`).join(', ')}`;
  if (d.kind === 'duplicate') return `key ${d.key}: ${d.sourceCount} row(s) in source, ${d.targetCount} in target`;
  return `key ${d.key}: ${d.kind}`;
}

/** The first missed or invented difference, in words. */
function scoreCounterexample(score: Score, truth: readonly TruthEntry[], found: readonly RowDiff[], where: string): string | undefined {
  const missed = truth.find((t) => score.missed.includes(identityOf(t)));
  const invented = found.find((d) => score.invented.includes(identityOf(d)));
  const missedLine = missed && `${where}: ${describeTruth(missed)} was injected but not reported (recall ${score.matched}/${score.expected})`;
  const inventedLine = invented && `${where}: reported ${describeDiff(invented)} — not an injected difference (precision ${score.matched}/${score.found})`;
  // Lead with the larger failure: a flood of false alarms says more than the misses it causes.
  return score.invented.length > score.missed.length ? (inventedLine ?? missedLine) : (missedLine ?? inventedLine);
}

export const findsAllInventsNone = requires<S, 'score'>('score', (score, s) => {
  const parquet = s.parquet?.score;
  const passed = score.precision === 1 && score.recall === 1 && (!parquet || (parquet.precision === 1 && parquet.recall === 1));
  return {
    passed,
    evidence: { injected: score.expected, found: score.found, precision: score.precision, recall: score.recall, parquet_precision: parquet?.precision ?? null, parquet_recall: parquet?.recall ?? null },
    counterexample: passed
      ? undefined
      : (scoreCounterexample(score, s.truth!, s.found!.diffs, 'duckdb target') ?? (s.parquet ? scoreCounterexample(s.parquet.score, s.truth!, s.parquet.outcome.diffs, 'parquet target') : undefined)),
  };
});

export const noFalseAlarms = requires<S, 'equal'>('equal', ({ diffs }, s) => ({
  passed: diffs.length === 0,
  evidence: { rows: s.rows, differences_reported: diffs.length, days_named: s.equalPartitionsNamed ?? null },
  counterexample: diffs.length ? `${diffs.length} false alarm(s) on equal data, e.g. ${describeDiff(diffs[0]!)}` : undefined,
}));

export const bisectionFetchesLittle = requires<S, 'found'>('found', (found, s) => {
  const fetched = found.rowsFetched;
  const total = s.rows * 2;
  const differing = s.truth!.length;
  const passed = fetched <= 100 * differing;
  return {
    passed,
    evidence: { rows: s.rows, differing_rows: differing, differing_pct: pct(differing / s.rows), rows_fetched: fetched, fetched_pct: pct(fetched / total) },
    counterexample: passed ? undefined : `moved ${fetched} of ${total} rows (${pct(fetched / total)} %) to find ${differing} differing rows — more than 100 per difference`,
  };
});

export function bisectionBeatsFullPull(s: S): ClaimResult {
  const speedup = (s.timings.fullpull_ms ?? NaN) / (s.timings.bisect_ms ?? NaN);
  const same = s.fullPull ? s.fullPull.score.precision === 1 && s.fullPull.score.recall === 1 : false;
  const evidence = { rows: s.rows, bisect_ms: Math.round(s.timings.bisect_ms ?? NaN), bisect_runs: s.timings.bisect_runs ?? 1, fullpull_ms: Math.round(s.timings.fullpull_ms ?? NaN), speedup: Math.round(speedup * 100) / 100, full_pull_agrees: same };
  // The full pull must find the same set at any size: that part is judged on every run.
  if (s.rows < BAR_ROWS && same) {
    return { passed: false, evidence, notJudged: `the 5× bar is set at ${BAR_ROWS.toLocaleString('en-US')} rows (--scale ${BAR_ROWS / ROWS_PER_SCALE}); this run has ${s.rows.toLocaleString('en-US')}` };
  }
  return {
    passed: speedup >= 5 && same,
    evidence,
    counterexample: !same
      ? 'the full pull did not find exactly the injected set, so the two are not doing the same work'
      : speedup >= 5
        ? undefined
        : `at ${s.rows} rows the full pull took ${Math.round(s.timings.fullpull_ms ?? NaN)} ms and bisection ${Math.round(s.timings.bisect_ms ?? NaN)} ms (${speedup.toFixed(2)}×)`,
  };
}

export const fingerprintOrderIndependentSensitive = requires<S, 'perturbations'>('perturbations', (perturbations, s) => {
  const fp = s.equalFingerprints!;
  const equal = fp.source.sum === fp.target.sum && fp.source.rows === fp.target.rows;
  const unchanged = perturbations.filter((p) => !p.changed);
  return {
    passed: equal && unchanged.length === 0 && perturbations.length > 0,
    evidence: { cross_engine_equal: equal, single_changes: perturbations.length, changed_fingerprint: perturbations.length - unchanged.length },
    counterexample: !equal ? `same rows, fingerprints differ: postgres ${fp.source.sum} vs duckdb ${fp.target.sum}` : unchanged.length ? `${unchanged[0]!.change} left the fingerprint unchanged` : undefined,
  };
});

export const partitionDaysNamed = requires<S, 'partitions'>('partitions', (partitions, s) => {
  const truthDays = new Set(s.truth!.map((t) => t.day));
  const named = new Set(partitions.namedDays);
  const missed = [...truthDays].filter((d) => !named.has(d));
  const extra = [...named].filter((d) => !truthDays.has(d));
  const passed = missed.length === 0 && extra.length === 0;
  const missedEntry = s.truth!.find((t) => missed.includes(t.day));
  return {
    passed,
    evidence: { days: partitions.partitions.length, days_with_diffs: truthDays.size, days_named: named.size, classic_aggregates_name: partitions.classicDays.length },
    counterexample: passed ? undefined : missedEntry ? `day ${missedEntry.day} holds ${describeTruth(missedEntry)} but was not named` : `day ${extra[0]} named but holds no difference`,
  };
});
