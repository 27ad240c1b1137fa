/**
 * The skew lab's claims, as pure checks over the run's evidence. A missing section (its step did
 * not run) shows as null evidence and fails the claim.
 */
import { requires, type ClaimResult } from '../contract.ts';
import { SKEW_PARAMS, type SkewState, type SweepPoint } from './scenario.ts';
import { findRun, sweepKnee } from './strategies.ts';

export const fmt = (n: number) => n.toLocaleString('en-US');
export const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

/** Claim detect-hot-keys: the sample finds every key at ≥ 2× the hot share; each estimate's error is reported. */
export const detectHotKeysClaim = ({ detection: d }: SkewState): ClaimResult => {
  const missed = d?.mustFind.find((m) => !m.found);
  const mustErr = d ? Math.max(0, ...d.hot.filter((h) => d.mustFind.some((m) => m.key === h.key)).map((h) => h.relError)) : null;
  return {
    passed: !!d && d.mustFind.length > 0 && d.recall === 1,
    evidence: {
      sample_rate: d ? round(d.effectiveRate, 4) : null,
      sampled_rows: d?.sampledRows ?? null,
      keys_over_2x: d?.mustFind.length ?? null,
      recall: d?.recall ?? null,
      hot_keys: d?.hot.length ?? null,
      max_error_pct_2x: mustErr === null ? null : round(100 * mustErr, 1),
      max_error_pct_all: d ? round(100 * d.maxRelError, 1) : null,
    },
    counterexample: missed ? `merchant ${missed.key} holds ${fmt(missed.exactCount)} of ${fmt(d!.rows)} rows (≥ ${2 * d!.hotShare * 100}%) but the sample did not flag it` : undefined,
  };
};

/** Claim same-answer: every strategy's multiset of rows equals the plain join's, and the plain join DuckDB's. */
export const sameAnswer = (s: SkewState): ClaimResult => {
  const fx = s.fixture;
  const wrong = s.runs.filter((r) => !r.answer.equal);
  const nativeOff = s.plainVsNative.filter((p) => p.plainRows !== p.nativeRows || p.plainFp !== p.nativeFp);
  let hotAbsentRows = 0;
  if (fx) for (const k of fx.fact.key) if (k === fx.hotAbsent) hotAbsentRows++;
  const first = wrong[0];
  return {
    passed: s.runs.length === s.expectedRuns && s.plainVsNative.length === 2 && wrong.length === 0 && nativeOff.length === 0 && (fx?.nullRows ?? 0) > 0 && hotAbsentRows > 0,
    evidence: {
      comparisons: s.runs.length,
      equal: s.runs.length - wrong.length,
      duckdb_inner_rows: s.native.find((n) => n.joinType === 'inner')?.rows ?? null,
      duckdb_left_rows: s.native.find((n) => n.joinType === 'left')?.rows ?? null,
      plain_matches_duckdb: s.plainVsNative.length === 2 && nativeOff.length === 0,
      null_key_rows: fx?.nullRows ?? null,
      hot_absent_rows: hotAbsentRows,
    },
    counterexample: first
      ? `${first.joinType} join, ${first.strategy}: ${first.answer.example} — ${fmt(first.answer.differingRows)} payments differ (${fmt(first.answer.missing)} joined rows missing, ${fmt(first.answer.extra)} extra)`
      : nativeOff[0]
        ? `${nativeOff[0].joinType} join: plain executor ${fmt(nativeOff[0].plainRows)} rows (fingerprint ${nativeOff[0].plainFp}) vs DuckDB ${fmt(nativeOff[0].nativeRows)} (${nativeOff[0].nativeFp})`
        : undefined,
  };
};

/** Claim balance: max/avg rows per partition before and after salting. */
export const balance = (s: SkewState): ClaimResult => {
  const before = findRun(s, 'plain');
  const after = findRun(s, 'salted');
  const worst = after ? after.tasks.reduce((a, t) => (t.inputRows > a.inputRows ? t : a), after.tasks[0]!) : undefined;
  return {
    passed: !!before && !!after && before.ratio >= SKEW_PARAMS.minRatioBefore && after.ratio <= SKEW_PARAMS.maxRatioAfter,
    evidence: { ratio_before: before ? round(before.ratio) : null, ratio_after: after ? round(after.ratio) : null, partitions: SKEW_PARAMS.partitions, salt_factor: SKEW_PARAMS.saltFactor, hot_keys: s.detection?.hot.length ?? null },
    counterexample:
      after && worst && after.ratio > SKEW_PARAMS.maxRatioAfter
        ? `after salting, partition ${worst.partition} still takes ${fmt(worst.inputRows)} rows — ${round(after.ratio)}× the average`
        : undefined,
  };
};

/** Claim makespan (benchmark): the E-executor makespan of plain over salted. */
export const makespanSpeedup = (s: SkewState): ClaimResult => {
  const before = findRun(s, 'plain');
  const after = findRun(s, 'salted');
  const speedup = before && after && after.makespanMs > 0 ? before.makespanMs / after.makespanMs : 0;
  return {
    passed: speedup >= SKEW_PARAMS.minSpeedup,
    evidence: {
      basis: s.makespanBasis,
      executors: SKEW_PARAMS.executors,
      makespan_plain_ms: before ? round(before.makespanMs, 1) : null,
      makespan_salted_ms: after ? round(after.makespanMs, 1) : null,
      speedup: round(speedup),
      speedup_by_rows: before && after ? round(before.makespanRows / after.makespanRows) : null,
    },
    counterexample: before && after && speedup < SKEW_PARAMS.minSpeedup ? `the longest salted task took ${round(after.makespanMs, 1)} ms vs ${round(before.makespanMs, 1)} ms plain` : undefined,
    // A Spark task costs ~20 ms of CPU whatever its rows: below 2M payments that floor, not the rows, sets the makespan.
    ...(s.spark && (s.fixture?.scale ?? 1) < 1 ? { notJudged: `on Spark the bar is judged at --scale 1 or more: below, each task's fixed cost (~20 ms CPU) outweighs its rows (speedup by rows ${before && after ? round(before.makespanRows / after.makespanRows) : '–'}×)` } : {}),
  };
};

/** Claim cost-of-k: rows shuffled grow by the hot merchants' copies only, and the sweep has a knee. */
export const costOfK = (s: SkewState): ClaimResult => {
  const sw = s.sweep;
  const knee = sweepKnee(sw);
  const last = sw[sw.length - 1];
  const base = sw[0];
  const monotone = sw.every((p, i) => i === 0 || p.rowsShuffled >= sw[i - 1]!.rowsShuffled);
  const overpays = (p: SweepPoint) => p.rowsShuffled - base!.rowsShuffled > (p.k - base!.k) * s.hotDimRows;
  const atK = sw.find((p) => p.k === SKEW_PARAMS.saltFactor);
  // A sweep with any point has a knee (its last point, at worst): only a sweep that did not run has none.
  if (!base || !knee || !last) return { passed: false, evidence: {}, counterexample: 'the K sweep did not run' };
  const overpaid = atK && overpays(atK) ? atK : sw.find(overpays);
  return {
    passed: sw.length === SKEW_PARAMS.kSweep.length && monotone && !overpaid && knee.k < last.k && last.rowsShuffled > knee.rowsShuffled,
    evidence: {
      knee_k: knee.k,
      makespan_rows_k1: base.makespanRows,
      makespan_rows_knee: knee.makespanRows,
      makespan_rows_kmax: last.makespanRows,
      rows_shuffled_knee: knee.rowsShuffled,
      rows_shuffled_kmax: last.rowsShuffled,
      hot_merchant_rows: s.hotDimRows,
    },
    counterexample: overpaid
      ? `K=${overpaid.k} shipped ${fmt(overpaid.dimCopies)} merchant rows for ${fmt(base.dimCopies)} merchants (${fmt(overpaid.rowsShuffled - base.rowsShuffled)} extra); copying only the ${s.hotDimRows} hot merchants costs at most ${fmt((overpaid.k - base.k) * s.hotDimRows)} extra` +
        ` — for max/avg rows ${round(overpaid.ratio)}` +
        (s.hotOnlyRatio !== undefined ? ` vs ${round(s.hotOnlyRatio)} with only the hot keys salted` : '')
      : !monotone
        ? `rows shuffled fall as K grows: ${sw.map((p) => `K=${p.k}:${p.rowsShuffled}`).join(' ')}`
        : undefined,
  };
};

/** Claim retry-determinism: a re-run map task sends every row where it went the first time; rand() does not. */
export const retryDeterminism = requires<SkewState, 'retry'>('retry', (retry, { retryRand }) => ({
  passed: !!retryRand && retry.moved === 0 && retryRand.moved > 0,
  evidence: {
    map_task: retry.mapTask,
    rows: retry.rows,
    moved: retry.moved,
    lost: retry.lost,
    duplicated: retry.duplicated,
    rand_moved: retryRand?.moved ?? null,
    rand_lost: retryRand?.lost ?? null,
    rand_duplicated: retryRand?.duplicated ?? null,
  },
  counterexample: retry.moved > 0 ? `${retry.example} (${fmt(retry.moved)} of ${fmt(retry.rows)} rows moved: ${fmt(retry.lost)} lost, ${fmt(retry.duplicated)} counted twice)` : undefined,
}));
