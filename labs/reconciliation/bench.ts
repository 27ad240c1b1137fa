/**
 * The levels side by side (benchmark only): counts, keys, per-day aggregates, the full pull and
 * bisection, each with what it finds and what it costs — count(*) is the floor.
 */
import { compareCounts, diffReportJson, fullPullDiff, keyDiff, scoreDiffs, type Reconciler, type RowDiff, type Score } from '../../pipelines/reconciliation/index.ts';
import { ORDERS_SPEC as spec, type TruthEntry } from '../../fixtures/reconciliation.ts';
import { timed, type ReconciliationState, type Sides } from './scenario.ts';

export interface LevelRow {
  level: string;
  ms: number;
  rows_moved: number;
  finds: string;
}

export interface LevelsEvidence {
  levels: LevelRow[];
  fullPull: { score: Score; rowsFetched: number };
  countMs: number;
  /** Every bisection run's time, the reconcile step's first. */
  bisectRuns: number[];
  /** The fastest full pull. */
  fullPullMs: number;
}

export const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const kinds = (diffs: readonly RowDiff[]) => {
  const n = diffReportJson({ diffs: [...diffs], rowsFetched: 0 }).summary;
  return `missing ${n.missing} extra ${n.extra} dup ${n.duplicate} value ${n.value}`;
};

/**
 * Timings on a shared 2-core machine swing 2× run to run, so the speed claim reads repeats:
 * count(*) runs five times and bisection three (the reconcile step's run and two here) and their
 * medians count; the full pull (seconds) runs twice, interleaved with the bisection runs, and its
 * FASTEST time counts — the ratio errs against bisection, never for it.
 */
export async function compareLevels(impl: Reconciler, { source, target }: Sides, truth: readonly TruthEntry[], s: Pick<ReconciliationState, 'timings' | 'partitions' | 'found'>): Promise<LevelsEvidence> {
  const counts: Awaited<ReturnType<typeof timed<Awaited<ReturnType<typeof compareCounts>>>>>[] = [];
  for (let i = 0; i < 5; i++) counts.push(await timed(() => compareCounts(source, target)));
  const countMs = median(counts.map((c) => c.ms));
  const keys = await timed(() => keyDiff(source, target, spec));
  const bisectRuns = s.timings.bisect_ms === undefined ? [] : [s.timings.bisect_ms];
  const pulls: Awaited<ReturnType<typeof timed<Awaited<ReturnType<typeof fullPullDiff>>>>>[] = [];
  for (let round = 0; round < 2; round++) {
    pulls.push(await timed(() => fullPullDiff(source, target, spec)));
    bisectRuns.push((await timed(() => impl.diff(source, target, spec))).ms);
  }
  const fullMs = Math.min(...pulls.map((p) => p.ms));
  const full = pulls[pulls.length - 1]!;
  const last = counts[counts.length - 1]!;
  const bisectMs = median(bisectRuns);
  return {
    countMs,
    bisectRuns,
    fullPullMs: fullMs,
    fullPull: { score: scoreDiffs(truth, full.value.diffs), rowsFetched: full.value.rowsFetched },
    levels: [
      { level: 'counts', ms: countMs, rows_moved: 0, finds: `${last.value.source} vs ${last.value.target} rows` },
      { level: 'keys', ms: keys.ms, rows_moved: keys.value.keysFetched, finds: `missing ${keys.value.missing.length} extra ${keys.value.extra.length} dup ${keys.value.duplicated.length}` },
      { level: 'partitions', ms: s.timings.partitions_ms ?? NaN, rows_moved: 0, finds: `${s.partitions?.namedDays.length ?? 0} days` },
      { level: 'full pull (values)', ms: fullMs, rows_moved: full.value.rowsFetched, finds: kinds(full.value.diffs) },
      { level: 'bisection', ms: bisectMs, rows_moved: s.found?.rowsFetched ?? 0, finds: kinds(s.found?.diffs ?? []) },
    ],
  };
}
