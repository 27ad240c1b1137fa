/** What the compaction lab prints and charts: tables of the run's evidence, the report's charts, the `--out` tables. */
import type { ChartSpec, PersistTarget } from '../contract.ts';
import { fileSizeHistogram, type DataFile, type Manifest, type PartitionFileStats } from '../../pipelines/compaction/index.ts';
import { median } from './bench.ts';
import { querySpeedup } from './claims.ts';
import type { CrashEvidence } from './crash.ts';
import type { DeltaBase } from './delta.ts';
import { COMPACTION_DEFAULTS, type Base, type CompactionState, type FaultRun, type MainEvidence } from './scenario.ts';

export const ingestTable = (b: Base) => [
  {
    events: b.produced,
    'micro-batches': b.sink.batches,
    'files written': b.sink.filesWritten,
    commits: b.sink.commits,
    partitions: b.fingerprints.size,
    seconds: b.reused ? 'reused' : Math.round(b.ingestMs / 100) / 10,
  },
];

export const convertNote = (d: DeltaBase) =>
  `CONVERT TO DELTA: the sink's ${d.manifest.files.length} files, as they are, are version ${d.manifest.version} of a Delta table (one commit, no file rewritten) in ${Math.round(d.convertMs)} ms; each step compacts a hard-linked copy of it`;

export const monitorBeforeTable = (stats: readonly PartitionFileStats[]) =>
  stats.map(({ partition, files, rows, median_kb, total_kb, warning }) => ({ partition, files, rows, median_kb, total_kb, warning: warning ?? '' }));

export const monitorAfterTable = (stats: readonly PartitionFileStats[]) => stats.map(({ partition, files, rows, min_kb, max_kb, warning }) => ({ partition, files, rows, min_kb, max_kb, warning: warning ?? '' }));

export const compactNote = ({ before, after, ms, reader }: MainEvidence) =>
  `${before.files.length} files → ${after.files.length} (version ${before.version} → ${after.version}) in ${Math.round(ms)} ms; reader: ${reader.reads} reads, ${reader.badReads} wrong`;

export const faultsTable = (faults: readonly FaultRun[]) =>
  faults.map((f) => {
    const text = f.error ?? f.diff ?? '';
    const cut = text.indexOf(': ');
    if (f.notInjectable) return { fault: f.fault, outcome: 'not injectable', partition: '', detail: "the rewrite is the engine's own (OPTIMIZE): no user code to fault" };
    return { fault: f.fault, outcome: f.unchanged ? 'refused, table unchanged' : 'COMMITTED', partition: cut > 0 ? text.slice(0, cut) : '', detail: cut > 0 ? text.slice(cut + 2) : text };
  });

const retentionH = COMPACTION_DEFAULTS.retentionMs / 3600_000;

export const crashTable = (c: CrashEvidence) => [
  { moment: c.killedWhat === 'driver' ? `after SIGKILL of the Spark driver (${c.filesWrittenBeforeKill} files written, not committed; new driver in ${((c.driverRestartMs ?? 0) / 1000).toFixed(1)} s)` : `after SIGKILL (pid ${c.pid}) at checkpoint ${c.atCheckpoint ?? '–'}`, version: c.versionAfter, 'data unchanged': c.unchanged, 'unreferenced files': c.orphans },
  { moment: 're-run completed', version: c.rerunVersion, 'data unchanged': c.rerunUnchanged, 'unreferenced files': c.keptYoung },
  { moment: `vacuum (retention ${retentionH} h, then 0)`, version: c.versionAfterVacuum, 'data unchanged': c.unchangedAfterVacuum, 'unreferenced files': c.unreferencedAfterVacuum },
];

export const crashNote = (c: CrashEvidence) =>
  `vacuum, retention ${retentionH} h: kept ${c.keptYoung} young unreferenced files (could be a running writer's); retention 0: removed ${c.removedOrphans} orphans + ${c.removedTombstoned} replaced files`;

export const idempotentTable = (i: NonNullable<CompactionState['idempotent']>) => [{ 'files written': i.filesWritten, 'version before': i.versionBefore, 'version after': i.versionAfter }];

export const benchTable = (bench: NonNullable<CompactionState['bench']>) => [
  { table: 'before', files: bench.files.before, 'median ms': Math.round(median(bench.beforeMs) * 10) / 10 },
  { table: 'after', files: bench.files.after, 'median ms': Math.round(median(bench.afterMs) * 10) / 10 },
  ...(bench.fixedMs === undefined ? [] : [{ table: 'one-row table (the fixed cost of a Spark query)', files: 0, 'median ms': Math.round(bench.fixedMs * 10) / 10 }]),
];

export function throughputTable({ mb, runs }: NonNullable<CompactionState['throughput']>, spark = false) {
  const row = (job: string, ms: number[]) => ({
    job,
    MB: Math.round(mb * 100) / 100,
    'median ms': Math.round(median(ms)),
    'runs ms': ms.map((x) => Math.round(x)).join(' '),
    'MB/s': Math.round((mb / median(ms)) * 1000 * 10) / 10,
  });
  return [row(spark ? 'the compactor (OPTIMIZE: plan, rewrite, one commit)' : 'compaction (plan, rewrite, verify, commit)', runs.compactMs), row(spark ? 'Spark write of the same rows to Parquet (floor)' : 'DuckDB COPY of the same files (floor)', runs.copyMs)];
}

export const tradeoffTable = (t: NonNullable<CompactionState['tradeoff']>) =>
  t.plans.map((p) => ({
    'trigger s': p.triggerMs / 1000,
    'files (= commits × partitions touched)': p.files,
    commits: p.batches,
    'rows/file': Math.round(p.rows / p.files),
    'worst freshness s': Math.round(p.worstFreshnessMs / 1000),
  }));

export function compactionMetrics(s: CompactionState): Record<string, number> {
  const mbps = (ms: number | undefined) => (s.throughput && ms ? Math.round((s.throughput.mb / ms) * 1000 * 100) / 100 : 0);
  const c = mbps(s.throughput?.compactMs);
  const f = mbps(s.throughput?.copyMs);
  return {
    compaction_files_before: s.main?.before.files.length ?? 0,
    compaction_files_after: s.main?.after.files.length ?? 0,
    compaction_query_speedup: s.bench ? Math.round(querySpeedup(s.bench) * 100) / 100 : 0,
    compaction_mb_per_s: c,
    compaction_copy_mb_per_s: f,
    compaction_over_copy: f > 0 ? Math.round((c / f) * 100) / 100 : 0,
  };
}

export function compactionCharts(s: CompactionState): ChartSpec[] {
  const hist = (files: readonly DataFile[]) => fileSizeHistogram(files, 256).map((b) => ({ x: b.bucket, y: b.files }));
  const charts: ChartSpec[] = [];
  if (s.main) {
    charts.push({
      kind: 'bar',
      id: 'compaction-file-sizes',
      title: 'File sizes before and after compaction',
      x: 'file size',
      y: 'files',
      series: [
        { name: 'before', points: hist(s.main.before.files) },
        { name: 'after', points: hist(s.main.after.files) },
      ],
    });
  }
  if (s.tradeoff) {
    charts.push({
      kind: 'line',
      id: 'compaction-trigger-tradeoff',
      title: 'Trigger interval: files written vs worst freshness',
      x: 'trigger interval (s)',
      y: 'files / seconds',
      series: [
        { name: 'files written', points: s.tradeoff.plans.map((p) => ({ x: p.triggerMs / 1000, y: p.files })) },
        { name: 'worst freshness (s)', points: s.tradeoff.plans.map((p) => ({ x: p.triggerMs / 1000, y: Math.round(p.worstFreshnessMs / 1000) })) },
      ],
    });
  }
  return charts;
}

export async function persistCompaction(s: CompactionState, out: PersistTarget): Promise<void> {
  const files = (phase: string, m: Manifest | undefined) => (m?.files ?? []).map((f) => ({ phase, version: m!.version, ...f }));
  await out.table('compaction_files', [...files('before', s.main?.before), ...files('after', s.main?.after)]);
  await out.table('compaction_manifest', s.main ? [s.main.before, s.main.after].map((m) => ({ version: m.version, operation: m.operation, live_files: m.files.length, live_bytes: m.files.reduce((a, f) => a + f.bytes, 0), tombstoned_files: m.removed.length, source_offset: m.sourceOffset ?? null })) : []);
  await out.table('compaction_partitions', [...(s.monitorBefore ?? []).map((p) => ({ phase: 'before', ...p })), ...(s.monitorAfter ?? []).map((p) => ({ phase: 'after', ...p }))]);
  await out.table(
    'compaction_trigger_tradeoff',
    (s.tradeoff?.plans ?? []).map((p) => ({ trigger_s: p.triggerMs / 1000, files: p.files, commits: p.batches, rows: p.rows, worst_freshness_s: Math.round(p.worstFreshnessMs / 1000) })),
  );
}
