/**
 * Source ↔ target reconciliation across engines. Levels, each usable on its own:
 *
 *   compareCounts     count(*) both sides                                  (levels.ts)
 *   keyDiff           missing / extra / duplicated keys                    (levels.ts)
 *   fullPullDiff      every row pulled, compared per column                (levels.ts)
 *   partitionDiff     per-day aggregates + checksum, naming bad days       (levels.ts)
 *   bisectDiff        hash bisection: exact keys and columns, few rows     (bisect.ts)
 *   tableFingerprint  order-independent checksum of a table                (levels.ts)
 *
 * What "equal" means per column (NULL-safety, tolerance, trailing spaces, case, timestamp
 * precision) is declared once in a ReconSpec (spec.ts) and honoured by every level.
 */
import { bisectDiff, DEFAULT_BISECT, type BisectOptions } from './bisect.ts';
import type { DiffOutcome } from './report.ts';
import type { ReconSpec, TableSide } from './spec.ts';

export * from './spec.ts';
export * from './bisect.ts';
export * from './levels.ts';
export * from './report.ts';

/** A reconciler: finds the differing keys (and columns) of a source and a target. */
export interface Reconciler {
  diff(source: TableSide, target: TableSide, spec: ReconSpec): Promise<DiffOutcome>;
}

/** The reference: hash bisection, which finds every kind of difference and moves few rows. */
export function bisectingReconciler(bisect: typeof bisectDiff = bisectDiff, options: BisectOptions = DEFAULT_BISECT): Reconciler {
  return {
    async diff(source, target, spec) {
      const r = await bisect(source, target, spec, options);
      return { diffs: r.diffs, rowsFetched: r.stats.rowsFetched, stats: r.stats, tree: r.tree };
    },
  };
}
