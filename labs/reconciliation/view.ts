/** What the reconciliation lab prints and charts: tables and notes of the run's evidence, the report's charts, the `--out` tables. */
import type { ChartSpec, PersistTarget, TreeNode } from '../contract.ts';
import { diffRows, renderDiffTable, type DiffOutcome, type PartitionResult, type SegmentNode } from '../../pipelines/reconciliation/index.ts';
import type { TruthEntry } from '../../fixtures/reconciliation.ts';
import type { LevelsEvidence } from './bench.ts';
import type { ReconciliationState } from './scenario.ts';

export const loadNote = (s: ReconciliationState) =>
  `${s.rows} rows each side${s.floatNoise ? `; e.g. key ${s.floatNoise.id}: target amount ${s.floatNoise.amount} (float noise), source NUMERIC ${s.floatNoise.amount.toFixed(2)}` : ''}`;

export function fingerprintTable(s: ReconciliationState) {
  const fp = s.equalFingerprints!;
  return [
    { side: 'source (postgres)', rows: fp.source.rows, fingerprint: fp.source.sum },
    { side: 'target (duckdb)', rows: fp.target.rows, fingerprint: fp.target.sum },
  ];
}

export const equalNote = (s: ReconciliationState) => `differences reported: ${s.equal!.diffs.length}; rows fetched: ${s.equal!.rowsFetched}; days named: ${s.equalPartitionsNamed}`;

export function truthNote(truth: readonly TruthEntry[]): string {
  const byLabel = new Map<string, number>();
  for (const t of truth) byLabel.set(t.label, (byLabel.get(t.label) ?? 0) + 1);
  return [...byLabel].map(([l, n]) => `${l} ×${n}`).join(', ');
}

/** The differences found (a dozen at most), then what the bisection did and where its time went. */
export function reconcileNotes(found: DiffOutcome, ms: number): string[] {
  const lines = renderDiffTable(found.diffs, 12).split('\n');
  const s = found.stats;
  if (s) lines.push(`${s.levels} levels, ${s.segmentsCompared} segments compared, ${s.segmentsFetched} fetched, ${s.rowsFetched} of ${s.sourceRows + s.targetRows} rows moved, ${s.queries} queries, ${Math.round(ms)} ms`);
  if (s?.phases) lines.push(`where the time went: ${s.phases.map((p) => `${p.phase} ${Math.round(p.ms)} ms${p.segments ? ` (${p.segments} segments)` : ''}`).join(', ')}`);
  return lines;
}

export const partitionTable = (p: PartitionResult) => p.partitions.filter((d) => d.differing.length > 0).map((d) => ({ day: d.day, source_rows: d.sourceRows, target_rows: d.targetRows, differing: d.differing.join(' ') }));
export const partitionNote = (p: PartitionResult) => `${partitionTable(p).length} of ${p.partitions.length} days named; count/sum/min/max/distinct alone name ${p.classicDays.length}`;

export const levelsTable = (l: LevelsEvidence) => l.levels.map((r) => ({ ...r, ms: Math.round(r.ms) }));

export function levelsNotes(l: LevelsEvidence, bisectMs: number): string[] {
  return [
    `bisection runs ${l.bisectRuns.map(Math.round).join(', ')} ms (median ${Math.round(bisectMs)}); full pull ${Math.round(l.fullPullMs)} ms (fastest of 2)`,
    `bisection ${(l.fullPullMs / bisectMs).toFixed(1)}× faster than the full pull, ${(bisectMs / l.countMs).toFixed(1)}× count(*)`,
  ];
}

export const parquetNote = (p: NonNullable<ReconciliationState['parquet']>) => `Parquet target: ${p.outcome.diffs.length} differences, precision ${p.score.precision}, recall ${p.score.recall}, ${p.outcome.rowsFetched} rows fetched`;

/** The segment tree for the chart: differing paths in full, runs of equal segments folded into one node. */
export function chartTree(node: SegmentNode, label = 'all keys'): TreeNode {
  const kids = node.children ?? [];
  const children: TreeNode[] = [];
  let run: SegmentNode[] = [];
  const flush = () => {
    if (run.length === 0) return;
    children.push({ label: run.length === 1 ? `${run[0]!.lo}–${run[0]!.hi}` : `${run.length} equal segments ${run[0]!.lo}–${run[run.length - 1]!.hi}`, status: 'equal' });
    run = [];
  };
  for (const k of kids) {
    if (k.status === 'equal') run.push(k);
    else {
      flush();
      children.push(chartTree(k, `${k.lo}–${k.hi} (${k.sourceRows}/${k.targetRows} rows)`));
    }
  }
  flush();
  return { label, status: node.status, ...(children.length ? { children } : {}) };
}

export function flattenTree(node: SegmentNode, depth = 0, out: Record<string, unknown>[] = []): Record<string, unknown>[] {
  if (depth > 0) out.push({ depth, key_lo: node.lo, key_hi: node.hi, source_rows: node.sourceRows, target_rows: node.targetRows, status: node.status });
  for (const c of node.children ?? []) flattenTree(c, depth + 1, out);
  return out;
}

export function reconciliationCharts(s: ReconciliationState): ChartSpec[] {
  const charts: ChartSpec[] = [];
  if (s.found?.tree) charts.push({ kind: 'tree', id: 'recon-segment-tree', title: 'Bisection segment tree: equal segments folded, differing ones split, small ones fetched', root: chartTree(s.found.tree) });
  if (s.levels)
    charts.push({
      kind: 'bar',
      id: 'recon-levels-cost',
      title: 'Rows moved out of the databases, per level',
      x: 'level',
      y: 'rows moved',
      series: [{ name: 'rows moved', points: s.levels.map((l) => ({ x: l.level, y: l.rows_moved })) }],
    });
  return charts;
}

export async function persistReconciliation(s: ReconciliationState, out: PersistTarget): Promise<void> {
  await out.table('recon_differences', s.found ? diffRows(s.found.diffs) : []);
  await out.table('recon_ground_truth', (s.truth ?? []).map((t) => ({ key: t.key, kind: t.kind, columns: (t.columns ?? []).join(','), label: t.label, day: t.day })));
  await out.table('recon_partitions', (s.partitions?.partitions ?? []).map((p) => ({ day: p.day, source_rows: p.sourceRows, target_rows: p.targetRows, differing: p.differing.join(' '), classic_differs: p.classicDiffers })));
  await out.table('recon_segments', s.found?.tree ? flattenTree(s.found.tree) : []);
  await out.table('recon_levels', (s.levels ?? []).map((l) => ({ ...l, ms: Math.round(l.ms) })));
}
