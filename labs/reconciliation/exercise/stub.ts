/**
 * Exercise: write the hash-bisection diff — find the exact differing keys and columns between a
 * PostgreSQL source and a DuckDB target while moving almost no rows.
 *
 * The building blocks are given (pipelines/reconciliation/bisect.ts and spec.ts):
 *   keyBounds(side, spec)                               → { rows, min, max } of one side
 *   firstWidth(span, rows, options)                     → the first level's power-of-two segment width
 *   segmentChecksums(side, spec, ranges, origin, width) → Map<segment index, { rows, sum }>, computed
 *        in the database (ranges = [] → every row, no filter): segment i holds keys [origin + i·width, origin + (i+1)·width − 1], only
 *        rows whose key lies in one of `ranges` count; `sum` is the exact sum of canonical row
 *        hashes (identical in both engines for rows equal under the spec)
 *   fetchRows(side, spec, ranges)                       → the rows of those key ranges, comparable
 *   compareRowSets(spec, sourceRows, targetRows)        → RowDiff[]: missing / extra / duplicate /
 *        value (with the differing columns), NULL-safe, within tolerances
 *
 * Rules the checks hold you to (npm run check -- reconciliation):
 *   - every injected difference is reported, and nothing else (precision 1, recall 1);
 *   - equal data stored with other types and row order gives no difference;
 *   - at most 100 rows fetched per differing row: fetch only small differing segments
 *     (at most options.fetchThreshold rows on each side) and split bigger ones.
 */
import type { ReconSpec, TableSide } from '../../../pipelines/reconciliation/spec.ts';
import {
  compareRowSets,
  fetchRows,
  firstWidth,
  keyBounds,
  segmentChecksums,
  type BisectOptions,
  type BisectResult,
  type KeyRange,
  type SegmentNode,
} from '../../../pipelines/reconciliation/index.ts';

export async function bisectDiff(source: TableSide, target: TableSide, spec: ReconSpec, options: BisectOptions): Promise<BisectResult> {
  const { fanout, fetchThreshold } = options;
  const [sb, tb] = await Promise.all([keyBounds(source, spec), keyBounds(target, spec)]);
  const root: SegmentNode = { lo: 0, hi: -1, sourceRows: sb.rows, targetRows: tb.rows, status: 'equal', children: [] };
  const leaves: KeyRange[] = [];

  // TODO 1: the root range: from the smallest to the largest key of EITHER side (empty tables → no diffs).
  // TODO 2: the first width: a power of two such that a segment holds about fanout × fetchThreshold / 2
  //         rows (firstWidth(span, rows, options)); hash the whole range in one pass (ranges = []),
  //         so every row is hashed once and one split reaches the fetch threshold.
  // TODO 3: loop over levels: segmentChecksums on both sides for the ranges still differing; a segment
  //         whose (rows, sum) agree is equal; a differing one with ≤ fetchThreshold rows per side
  //         (or width 1) goes to `leaves`, a bigger one is split at width / fanout on the next level.
  //         Record each segment as a SegmentNode under its parent (the HTML report draws this tree).
  // TODO 4: fetchRows on both sides for `leaves`, compareRowSets, and report rowsFetched honestly.
  void [fanout, fetchThreshold, firstWidth, segmentChecksums, fetchRows, compareRowSets, leaves, root];
  throw new Error(`TODO: bisectDiff(${source.label} ↔ ${target.label}) is not written yet`);

  // The shape to return:
  // return {
  //   diffs,
  //   tree: root,
  //   stats: { queries, levels, segmentsCompared, segmentsFetched, rowsFetched, sourceRows: sb.rows, targetRows: tb.rows },
  // };
}
