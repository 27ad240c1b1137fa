/**
 * The compaction lab's pipeline: the steps that compact copies of the shared ingested table
 * (ingest.ts). Each step writes its evidence into the state and prints nothing (view.ts does).
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { LabContext } from '../contract.ts';
import {
  ConcurrentReader,
  faultyRewrite,
  fileStatsByPartition,
  dataFilesOnDisk,
  linkCopyTable,
  parquetScan,
  readManifest,
  readSnapshot,
  type CompactOptions,
  type CompactorProcess,
  type Compactor,
  type DataFile,
  type Fingerprint,
  type Manifest,
  type MicroBatchPlan,
  type PartitionFileStats,
  type RewriteFault,
} from '../../pipelines/compaction/index.ts';
import type { DuckDbEngine } from '../../pipelines/engines/duckdb/driver.ts';
import { errorLine } from '../../pipelines/errors.ts';
import type { CrashEvidence } from './crash.ts';
import type { DeltaBase } from './delta.ts';
import { fingerprintsOf, type Base } from './ingest.ts';

export type { Base };

/** The knobs of the lab (README: "Knobs"). */
export const COMPACTION_DEFAULTS = {
  triggerMs: 60_000,
  /** Target file size: 96 KB keeps the lab to seconds (production: 128 MB–1 GB). */
  targetBytes: 96 * 1024,
  smallFileBytes: 72 * 1024,
  /** Monitor: warn when a partition holds more small files than this. */
  maxSmallFiles: 32,
  /** The crash test kills the compactor when it announces this checkpoint (3 = after 3 partitions' files are written). */
  crashAtCheckpoint: 3,
  /** Vacuum retention shown first (keeps young orphans), before the retention-0 vacuum that removes them. */
  retentionMs: 3600_000,
  /** Trigger intervals of the trade-off table, seconds. */
  triggersS: [10, 30, 60, 300, 900],
  benchRuns: 7,
  /** Compaction and the COPY floor, each timed this many times (alternating); medians compared. */
  throughputRuns: 5,
  /** The aggregate query of the read benchmark. */
  query: (scan: string) => `SELECT dt, event_type, count(*) AS events, sum(amount_cents) AS revenue_cents FROM ${scan} GROUP BY ALL ORDER BY ALL`,
} as const;

export type PartFp = Map<string, Fingerprint>;

export interface FaultRun {
  fault: RewriteFault;
  committed: boolean;
  error: string | null;
  unchanged: boolean;
  diff: string | null;
  /** Not run: the compactor's rewrite is the engine's own code (Delta's OPTIMIZE) and takes no fault. */
  notInjectable?: boolean;
}

export interface MainEvidence {
  dir: string;
  before: Manifest;
  after: Manifest;
  fingerprints: PartFp;
  reader: { reads: number; badReads: number; versionsSeen: number[]; firstBad: string | null };
  error: string | null;
  ms: number;
}

export interface CompactionState {
  base?: Base;
  monitorBefore?: PartitionFileStats[];
  monitorAfter?: PartitionFileStats[];
  main?: MainEvidence;
  faults: FaultRun[];
  /** The crash step's compactor process, started at the ingest so it boots while other steps run. */
  crashProcess?: CompactorProcess;
  crash?: CrashEvidence;
  idempotent?: { filesWritten: number; versionBefore: number; versionAfter: number; error: string | null };
  bench?: {
    beforeMs: number[];
    afterMs: number[];
    resultsEqual: boolean;
    files: { before: number; after: number };
    /** Spark: the same query on a one-row table — what every query costs whatever the files. */
    fixedMs?: number;
    engine?: 'spark';
  };
  /** `--engine spark`: the ingested table as version 0 of a Delta table. */
  delta?: DeltaBase;
  throughput?: { mb: number; compactMs: number; copyMs: number; runs: { compactMs: number[]; copyMs: number[] } };
  tradeoff?: { plans: MicroBatchPlan[]; plannedAtIngestTrigger: number };
}

export function options(extra: Partial<CompactOptions> = {}): CompactOptions {
  return { targetBytes: COMPACTION_DEFAULTS.targetBytes, smallFileBytes: COMPACTION_DEFAULTS.smallFileBytes, sortBy: 'ts', ...extra };
}

/** First partition whose (rows, checksum) differ between two reads, as one line; null when equal. */
export function firstDifference(before: PartFp, after: PartFp): string | null {
  const keys = [...new Set([...before.keys(), ...after.keys()])].sort();
  for (const k of keys) {
    const a = before.get(k);
    const b = after.get(k);
    if (!a || !b || a.rows !== b.rows || a.checksum !== b.checksum) {
      if (!b) return `${k}: ${a!.rows} rows before, partition missing after`;
      if (!a) return `${k}: partition appeared with ${b.rows} rows`;
      return `${k}: rows ${a.rows} → ${b.rows}${a.rows === b.rows ? ', checksum differs' : ''}`;
    }
  }
  return null;
}

/** Whether the table at `dir` holds the base's data, partition by partition (null when it does). */
export const differenceFromBase = async (db: DuckDbEngine, base: Base, dir: string) => firstDifference(base.snapshot, (await readSnapshot(db, dir)).partitions);

/** One row that differs between two versions of a table, as text ("event 17: amount_cents 0 → 1"). */
export async function rowDiff(db: DuckDbEngine, dirA: string, a: readonly DataFile[], dirB: string, b: readonly DataFile[]): Promise<string | null> {
  const cols = 'event_id, ts, user_id, event_type, amount_cents, country';
  const sa = parquetScan(dirA, a);
  const sb = parquetScan(dirB, b);
  const [gone] = await db.query<Record<string, unknown>>(`SELECT ${cols} FROM ${sa} EXCEPT ALL SELECT ${cols} FROM ${sb} ORDER BY event_id LIMIT 1`);
  const [added] = await db.query<Record<string, unknown>>(`SELECT ${cols} FROM ${sb} EXCEPT ALL SELECT ${cols} FROM ${sa} ORDER BY event_id LIMIT 1`);
  if (gone && added && gone.event_id === added.event_id) {
    const changed = Object.keys(gone).filter((k) => String(gone[k]) !== String(added[k]));
    return `event ${gone.event_id}: ${changed.map((k) => `${k} ${String(gone[k])} → ${String(added[k])}`).join(', ')}`;
  }
  if (gone) return `event ${gone.event_id} (${gone.event_type}, ${gone.amount_cents} cents) is gone`;
  if (added) return `event ${added.event_id} appeared`;
  return null;
}

/** A hard-linked copy of a table (the base, or its Delta version) in this run's workDir, unique per call. */
export function fresh(ctx: LabContext, base: { dir: string }, label: string): string {
  // Unique per call: check runs of several compactors share the run's workDir.
  const dir = join(ctx.workDir, `compaction-${ctx.mode}-${label}-${randomBytes(3).toString('hex')}`);
  linkCopyTable(base.dir, dir);
  return dir;
}

export const monitorOptions = { smallFileBytes: COMPACTION_DEFAULTS.smallFileBytes, maxSmallFiles: COMPACTION_DEFAULTS.maxSmallFiles };

/** Step 2: files and sizes per partition of the ingested table. */
export const monitor = (base: Base) => fileStatsByPartition(base.manifest, monitorOptions);

/** Step 3: compact a copy while a reader queries it in a loop. */
export async function compactWhileReading(ctx: LabContext, impl: Compactor, base: Base): Promise<{ main: MainEvidence; monitorAfter: PartitionFileStats[] }> {
  const dir = fresh(ctx, base, 'main');
  const db = await ctx.engines.duckdb();
  const readerDb = await ctx.engines.duckdb();
  const reader = new ConcurrentReader(() => readSnapshot(readerDb, dir), base.snapshot);
  const before = readManifest(dir);
  // A read every 50 ms besides the deterministic probes at each checkpoint of the compactor.
  reader.start(50);
  const t0 = performance.now();
  let error: string | null = null;
  try {
    await impl.compact(db, dir, options({ checkpoint: () => reader.probe('checkpoint') }));
  } catch (err) {
    error = errorLine(err);
  }
  const ms = performance.now() - t0;
  await reader.probe('final');
  const report = await reader.stop();
  const after = readManifest(dir);
  return { main: { dir, before, after, fingerprints: await fingerprintsOf(db, dir), reader: report, error, ms }, monitorAfter: fileStatsByPartition(after, monitorOptions) };
}

/** Step 4: a rewrite that drops a row, one that changes a value, each on its own copy. */
export async function injectFaults(ctx: LabContext, impl: Compactor, base: Base): Promise<FaultRun[]> {
  const db = await ctx.engines.duckdb();
  const runs: FaultRun[] = [];
  for (const fault of ['drop-row', 'change-value'] as const) {
    const dir = fresh(ctx, base, fault);
    let error: string | null = null;
    let committed = false;
    try {
      committed = (await impl.compact(db, dir, options({ rewrite: faultyRewrite(fault) }))).committed;
    } catch (err) {
      error = errorLine(err);
    }
    const diff = await differenceFromBase(db, base, dir);
    const run: FaultRun = { fault, committed, error, unchanged: diff === null, diff: null };
    if (diff) run.diff = `${diff}; ${(await rowDiff(db, base.dir, base.manifest.files, dir, readManifest(dir).files)) ?? ''}`;
    runs.push(run);
  }
  return runs;
}

/** Step 6: compact the compacted table again. */
export async function compactAgain(ctx: LabContext, impl: Compactor, dir: string): Promise<NonNullable<CompactionState['idempotent']>> {
  const db = await ctx.engines.duckdb();
  const onDisk = () => dataFilesOnDisk(dir).map((f) => f.path);
  const before = new Set(onDisk());
  const v0 = readManifest(dir).version;
  let error: string | null = null;
  try {
    await impl.compact(db, dir, options());
  } catch (err) {
    error = errorLine(err);
  }
  return { filesWritten: onDisk().filter((f) => !before.has(f)).length, versionBefore: v0, versionAfter: readManifest(dir).version, error };
}
