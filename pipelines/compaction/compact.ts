/**
 * The compactor: per partition, rewrite the small files into files of a target size, prove the
 * rewrite kept every row, then swap the manifest in one atomic commit. Old files stay on disk
 * (readers of the old version may still be reading them) until `vacuum` removes them after a
 * retention period.
 *
 *   plan      per partition: files under `smallFileBytes` are candidates; fewer than 2 → skip
 *   rewrite   DuckDB reads the candidates and writes them back sorted, rolling over to a new file
 *             at the target size (only a partition's last file may be short)
 *   verify    per partition: rows AND order-independent checksum of the new files = of the old ones
 *   commit    one new manifest: old files out (tombstoned), new files in — or nothing at all
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { DuckDbEngine } from '../engines/duckdb/driver.ts';
import type { DeltaCompactor } from './delta.ts';
import { LabError } from '../errors.ts';
import {
  EVENT_COLUMNS,
  commitManifest,
  filesOnDisk,
  parquetScan,
  partitionDir,
  partitionKey,
  partitionPredicate,
  pathLiteral,
  readManifest,
  removeFile,
  type DataFile,
  type Fingerprint,
  type Manifest,
} from './table.ts';

/** A compactor's durable side effects, announced as they happen (crash points, concurrent readers). */
export interface CheckpointEvent {
  /** 1, 2, 3, … in order. */
  n: number;
  kind: 'written' | 'deleted' | 'committed';
  partition: string;
  files: string[];
}

/**
 * Writes the rows of `sourceSql` (a SELECT over the staged input) into `outDir` as Parquet files
 * of about `targetBytes` each; returns their absolute paths. The lab swaps in a faulty one to test
 * that the compactor's verification catches a rewrite that changes data.
 */
export type RewriteFn = (db: DuckDbEngine, sourceSql: string, out: { dir: string; filePrefix: string; targetBytes: number; sortBy: string | null }) => Promise<string[]>;

export interface CompactOptions {
  /** Target size of a compacted file, bytes. */
  targetBytes: number;
  /** Files smaller than this are compaction candidates (default 0.75 × target). */
  smallFileBytes?: number;
  /** Sort rows by this column inside the rewritten files (tighter min/max stats → row-group pruning). null = keep read order. */
  sortBy?: (typeof EVENT_COLUMNS)[number] | null;
  /** The rewrite step (default `rewritePartition`). */
  rewrite?: RewriteFn;
  /** A Delta compactor that rewrites rows itself: the SELECT of the rows it writes, from the SELECT of the rows it read (default: the same). The lab faults it. */
  rewriteSelect?: (sourceSql: string) => string;
  /** Called after each durable side effect, awaited: crash-point hook and test probe. */
  checkpoint?: (e: CheckpointEvent) => void | Promise<void>;
}

export interface CompactResult {
  /** Manifest version after the run (unchanged when nothing was committed). */
  version: number;
  committed: boolean;
  partitionsCompacted: number;
  partitionsSkipped: number;
  filesRemoved: number;
  filesWritten: number;
  bytesRead: number;
  bytesWritten: number;
}

/** The compaction commit, as a function the lab (and a learner) can swap: the lab's `Impl`. */
export type CompactFn = (db: DuckDbEngine, tableDir: string, options: CompactOptions) => Promise<CompactResult>;

/** Where a compactor's code lives, so the crash test can run it in a child process. */
export interface CompactorSource {
  /** File URL of the module exporting the compactor. */
  module: string;
  exportName: string;
}

/** A compactor under judgement (the reference, a pitfall, a learner's): the lab's `Impl`. */
export interface Compactor {
  compact: CompactFn;
  source: CompactorSource;
  /** The same compactor for the table on Delta Lake (`--engine spark`); absent: DuckDB's table only. */
  delta?: DeltaCompactor;
}

/** A run that committed nothing (yet): the start of every compactor's result. */
export const emptyResult = (version: number, skipped = 0): CompactResult => ({
  version,
  committed: false,
  partitionsCompacted: 0,
  partitionsSkipped: skipped,
  filesRemoved: 0,
  filesWritten: 0,
  bytesRead: 0,
  bytesWritten: 0,
});

/** The rewrite produced different data than it read: nothing is committed. */
export class VerificationError extends LabError {}

export const DEFAULT_TARGET_BYTES = 128 * 1024;

export interface PartitionPlan {
  key: string;
  dt: string;
  hour: number;
  inputs: DataFile[];
}

/**
 * Bin-packing plan: per partition, the files under the small-file threshold. A partition with
 * fewer than two of them has nothing to merge and is skipped — which is also what makes
 * compaction idempotent (its output leaves at most one short file per partition).
 */
export function planCompaction(m: Manifest, options: Pick<CompactOptions, 'targetBytes' | 'smallFileBytes'>): { plans: PartitionPlan[]; skipped: number } {
  const small = options.smallFileBytes ?? Math.floor(options.targetBytes * 0.75);
  const byPartition = new Map<string, PartitionPlan>();
  for (const f of m.files) {
    const key = partitionKey(f);
    let p = byPartition.get(key);
    if (!p) byPartition.set(key, (p = { key, dt: f.dt, hour: f.hour, inputs: [] }));
    if (f.bytes < small) p.inputs.push(f);
  }
  const all = [...byPartition.values()].sort((a, b) => a.key.localeCompare(b.key));
  const plans = all.filter((p) => p.inputs.length >= 2);
  return { plans, skipped: all.length - plans.length };
}

/**
 * The reference rewrite: DuckDB `COPY … TO dir (FILE_SIZE_BYTES …)` is a rolling writer — it
 * starts a new file once the current one reaches the size, checked at row-group boundaries.
 * Row groups of ~1/8 of the target keep each file within about +15 % of it; the size limit is
 * set a little under the target so files land around it rather than only above.
 */
export const rewritePartition: RewriteFn = async (db, sourceSql, out) => {
  mkdirSync(out.dir, { recursive: true });
  const order = out.sortBy ? ` ORDER BY ${db.dialect.ident(out.sortBy)}` : '';
  // ~16 bytes per event compressed: rows per row group ≈ target / 8 / 16, at least 1024.
  const rowGroup = Math.max(1024, Math.floor(out.targetBytes / 8 / 16));
  const [res] = await db.query<{ Count: number; Files: string[] | string }>(
    `COPY (SELECT ${EVENT_COLUMNS.join(', ')} FROM (${sourceSql})${order}) TO ${pathLiteral(out.dir)} ` +
      `(FORMAT parquet, COMPRESSION snappy, FILE_SIZE_BYTES ${Math.floor(out.targetBytes * 0.9)}, ROW_GROUP_SIZE ${rowGroup}, ` +
      `FILENAME_PATTERN '${filePattern(out.filePrefix)}', OVERWRITE_OR_IGNORE true, RETURN_FILES true)`,
  );
  const files = res?.Files;
  return (typeof files === 'string' ? (JSON.parse(files) as string[]) : (files ?? [])).slice().sort();
};

function filePattern(prefix: string): string {
  if (!/^[A-Za-z0-9_.\-]+$/.test(prefix)) throw new Error(`refusing to inline unexpected file prefix ${JSON.stringify(prefix)}`);
  return `${prefix}-{i}`;
}

/**
 * Runs a stage's `CREATE … AS SELECT` over small files without preserving row order, then restores
 * the setting. Row order across hundreds of small files means nothing (and the rewrite sorts):
 * unordered, DuckDB reads them in parallel — twice as fast.
 */
async function createStage(db: DuckDbEngine, createSql: string): Promise<void> {
  const [setting] = await db.query<{ v: boolean | string }>(`SELECT current_setting('preserve_insertion_order') AS v`);
  await db.exec('SET preserve_insertion_order = false');
  try {
    await db.exec(createSql);
  } finally {
    await db.exec(`SET preserve_insertion_order = ${String(setting?.v) === 'false' ? 'false' : 'true'}`);
  }
}

/** Stages a partition's input files in a temp table: read once, then checksummed and rewritten from memory. */
export async function stagePartition(db: DuckDbEngine, tableDir: string, inputs: readonly DataFile[]): Promise<{ table: string; fingerprint: Fingerprint }> {
  await createStage(db, `CREATE OR REPLACE TEMP TABLE compaction_stage AS SELECT ${EVENT_COLUMNS.join(', ')} FROM ${parquetScan(tableDir, inputs)}`);
  return { table: 'compaction_stage', fingerprint: await contentChecksum(db, 'compaction_stage') };
}

/**
 * Stages the candidates of every planned partition with ONE scan (reading hundreds of small files
 * in one parallel scan costs far less than one scan per partition), with per-partition checksums.
 * `source(p)` is the SELECT of one partition's staged rows. The stage is a regular table named
 * `table` (not TEMP: the rewrites read it from two connections); the caller drops it. Everything
 * staged at once is fine at lab scale; a production compactor caps each staged group (Iceberg:
 * max-file-group-size-bytes).
 */
export async function stageCandidates(
  db: DuckDbEngine,
  tableDir: string,
  plans: readonly PartitionPlan[],
  table: string,
): Promise<{ fingerprints: Map<string, Fingerprint>; source(p: { dt: string; hour: number }): string }> {
  const inputs = plans.flatMap((p) => p.inputs);
  const stage = db.dialect.ident(table);
  await createStage(db, `CREATE OR REPLACE TABLE ${stage} AS SELECT dt, hour, ${EVENT_COLUMNS.join(', ')} FROM ${parquetScan(tableDir, inputs)}`);
  const rows = await db.query<{ dt: string; hour: number; rows: number; checksum: string }>(
    `SELECT dt, hour, count(*) AS rows, CAST(sum(CAST(${ROW_HASH} AS HUGEINT)) AS VARCHAR) AS checksum FROM ${stage} GROUP BY dt, hour`,
  );
  const fingerprints = new Map(rows.map((r) => [partitionKey(r), { rows: Number(r.rows), checksum: r.checksum }]));
  return {
    fingerprints,
    source: (p) => `SELECT ${EVENT_COLUMNS.join(', ')} FROM ${stage} WHERE ${partitionPredicate(p)}`,
  };
}

/** The files a rewrite wrote, as manifest entries (rows, bytes), and their content checksum. */
export async function describeWrittenFiles(db: DuckDbEngine, tableDir: string, p: { dt: string; hour: number }, absFiles: readonly string[]): Promise<{ files: DataFile[]; fingerprint: Fingerprint }> {
  const [described] = await describeWrittenPartitions(db, tableDir, [{ partition: p, absFiles }]);
  return described!;
}

/**
 * `describeWrittenFiles` for several partitions' rewrites with ONE read of all the new files
 * (one query instead of one per partition: each query pays a fixed cost that, at lab scale, is
 * most of what reading a partition's output costs). Results in the order of `written`.
 */
export async function describeWrittenPartitions(
  db: DuckDbEngine,
  tableDir: string,
  written: readonly { partition: { dt: string; hour: number }; absFiles: readonly string[] }[],
): Promise<{ files: DataFile[]; fingerprint: Fingerprint }[]> {
  const all = written.flatMap((w) => w.absFiles);
  const perFile =
    all.length === 0
      ? []
      : await db.query<{ filename: string; rows: number; checksum: string }>(
          `SELECT filename, count(*) AS rows, CAST(sum(CAST(${ROW_HASH} AS HUGEINT)) AS VARCHAR) AS checksum ` +
            `FROM read_parquet([${all.map((f) => pathLiteral(f)).join(', ')}], filename = true) GROUP BY filename`,
        );
  const byName = new Map(perFile.map((r) => [r.filename, r]));
  return written.map(({ partition: p, absFiles }) => {
    let rows = 0;
    let sum = 0n;
    const files = absFiles.map((abs) => {
      const r = byName.get(abs);
      rows += Number(r?.rows ?? 0);
      sum += BigInt(r?.checksum ?? '0');
      return { path: relative(tableDir, abs), dt: p.dt, hour: p.hour, rows: Number(r?.rows ?? 0), bytes: statSync(abs).size };
    });
    return { files, fingerprint: { rows, checksum: sum.toString() } };
  });
}

const ROW_HASH = `hash(${EVENT_COLUMNS.join(', ')})`;

/**
 * The compactor's own check: rows and the exact sum of DuckDB's native 64-bit hash of every row
 * (order-independent, like `Dialect.hash64` + `sumExact`, but computed natively so verifying costs
 * a fraction of the rewrite). The lab judges the result with a second, independent checksum
 * (the md5-based `Dialect.hash64`), so the evidence does not rest on the compactor's own hash.
 */
export async function contentChecksum(db: DuckDbEngine, from: string): Promise<Fingerprint> {
  const [r] = await db.query<{ rows: number; checksum: string }>(
    `SELECT count(*) AS rows, CAST(COALESCE(sum(CAST(${ROW_HASH} AS HUGEINT)), 0) AS VARCHAR) AS checksum FROM ${from}`,
  );
  return { rows: Number(r!.rows), checksum: r!.checksum };
}

/**
 * What a compaction checks before its commit: rows AND content checksum per partition (the
 * reference), rows only, or nothing. The weaker two are the lab's pitfalls: the same compactor
 * with the check that lets a wrong rewrite through.
 */
export type CompactionCheck = 'rows-and-checksum' | 'rows' | 'none';

/**
 * The reference compaction commit. Writes new files next to the old ones (invisible: no manifest
 * names them), verifies each partition, and commits one manifest — the only step readers see.
 * On a verification failure it deletes what it wrote and commits nothing.
 */
export const compactTable: CompactFn = compactChecking('rows-and-checksum');

/** `compactTable` with the check before the commit chosen (see `CompactionCheck`). */
export function compactChecking(check: CompactionCheck): CompactFn {
  return async (db, tableDir, options) => {
    const rewrite = options.rewrite ?? rewritePartition;
    const sortBy = options.sortBy === undefined ? 'ts' : options.sortBy;
    const base = readManifest(tableDir);
    const { plans, skipped } = planCompaction(base, options);
    const result = emptyResult(base.version, skipped);
    if (plans.length === 0) return result;

    // A unique name per attempt: a re-run after a crash never collides with the orphans of the crashed one.
    const attempt = `compact-v${String(base.version + 1).padStart(6, '0')}-${randomBytes(4).toString('hex')}`;
    let n = 0;
    const written: DataFile[] = [];
    const replaced = new Set<string>();
    // Every partition's rewrite, as it happens: what a failure before the commit must remove.
    const rewritten: { partition: PartitionPlan; absFiles: string[] }[] = [];
    const stageTable = `${attempt.replace(/-/g, '_')}_stage`;
    // A second connection: partitions are rewritten two at a time. Each partition's sort-and-write
    // is small and mostly single-threaded; two in flight keep both cores busy (~1/3 less rewrite
    // time). In fixed pairs, announced in plan order: what is on disk at any checkpoint — and so
    // what a crash there leaves — is the same on every run.
    const second = await db.connect();
    try {
      const staged = await stageCandidates(db, tableDir, plans, stageTable);
      // Rewrite every partition (each a durable side effect, announced), then read all the new
      // files back in one query and verify each partition against its inputs: rows AND content.
      for (let i = 0; i < plans.length; i += 2) {
        const pair = plans.slice(i, i + 2);
        const outcomes = await Promise.allSettled(
          pair.map((p, j) => rewrite(j === 0 ? db : second, staged.source(p), { dir: join(tableDir, partitionDir(p)), filePrefix: attempt, targetBytes: options.targetBytes, sortBy })),
        );
        // Both have finished before anything is judged: no rewrite is still writing when a failure's cleanup runs.
        const done = pair.flatMap((p, j) => (outcomes[j]!.status === 'fulfilled' ? [{ partition: p, absFiles: (outcomes[j] as PromiseFulfilledResult<string[]>).value }] : []));
        rewritten.push(...done);
        const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
        if (failed) throw failed.reason;
        for (const { partition: p, absFiles } of done) await options.checkpoint?.({ n: ++n, kind: 'written', partition: p.key, files: absFiles.map((f) => relative(tableDir, f)) });
      }
      const described = await describeWrittenPartitions(db, tableDir, rewritten);
      for (const [i, { partition: p }] of rewritten.entries()) {
        const out = described[i]!;
        const before = staged.fingerprints.get(p.key) ?? { rows: 0, checksum: '0' };
        const after = out.fingerprint;
        const differs = check === 'none' ? false : after.rows !== before.rows || (check === 'rows-and-checksum' && after.checksum !== before.checksum);
        if (differs) {
          throw new VerificationError(
            `${p.key}: read ${before.rows} rows, wrote ${after.rows}${after.rows === before.rows ? ' with a different checksum' : ''}: not committed`,
          );
        }
        written.push(...out.files);
        for (const f of p.inputs) replaced.add(f.path);
        result.partitionsCompacted += 1;
        result.bytesRead += p.inputs.reduce((s, f) => s + f.bytes, 0);
        result.bytesWritten += out.files.reduce((s, f) => s + f.bytes, 0);
      }
    } catch (err) {
      // Nothing was committed: the files this attempt wrote are garbage. Remove them now (vacuum
      // would too, after the retention period; a crash skips this and leaves them to vacuum) —
      // by the attempt's unique prefix, so the partial output of a rewrite that failed midway goes too.
      for (const p of plans) {
        const dir = join(tableDir, partitionDir(p));
        if (!existsSync(dir)) continue;
        for (const f of readdirSync(dir)) if (f.startsWith(`${attempt}-`)) removeFile(dir, f);
      }
      throw err;
    } finally {
      // Each step on its own: a failed close must neither skip the drop nor hide the first error.
      await second.close().catch(() => undefined);
      await db.exec(`DROP TABLE IF EXISTS ${db.dialect.ident(stageTable)}`).catch(() => undefined);
    }

    // The one step readers see: old files out (tombstoned, still on disk), new files in.
    const now = Date.now();
    const next = commitManifest(tableDir, base, {
      operation: 'compact',
      files: [...base.files.filter((f) => !replaced.has(f.path)), ...written],
      removed: [...base.removed, ...[...replaced].map((path) => ({ path, removedAt: now }))],
      sourceOffset: base.sourceOffset,
    });
    await options.checkpoint?.({ n: ++n, kind: 'committed', partition: '*', files: [] });
    return { ...result, version: next.version, committed: true, filesRemoved: replaced.size, filesWritten: written.length };
  };
}

export interface VacuumResult {
  /** Tombstoned files (replaced by a commit) deleted. */
  removedTombstoned: number;
  /** Files no manifest ever named (a crashed writer's output) deleted. */
  removedOrphans: number;
  /** Unreferenced files kept because they are younger than the retention period. */
  keptYoung: number;
  version: number;
}

/**
 * Deletes files that are no longer part of the table and older than `retentionMs`:
 *   - tombstoned files a commit replaced at least `retentionMs` ago (a reader that opened an
 *     older version before then has had that long to finish);
 *   - orphans: files no manifest names — a crashed writer's output — last modified at least
 *     `retentionMs` ago (a younger one may belong to a writer that is still running).
 * Like Delta's VACUUM and Iceberg's expire_snapshots + remove_orphan_files.
 */
export function vacuum(tableDir: string, options: { retentionMs: number; now?: number }): VacuumResult {
  const now = options.now ?? Date.now();
  const cutoff = now - options.retentionMs;
  const base = readManifest(tableDir);
  const live = new Set(base.files.map((f) => f.path));
  const tomb = new Map(base.removed.map((r) => [r.path, r.removedAt]));
  let removedTombstoned = 0;
  let removedOrphans = 0;
  let keptYoung = 0;
  const stillTombstoned: Manifest['removed'] = [];
  for (const r of base.removed) {
    if (r.removedAt <= cutoff) {
      removeFile(tableDir, r.path);
      removedTombstoned += 1;
    } else stillTombstoned.push(r);
  }
  for (const f of filesOnDisk(tableDir)) {
    const isData = f.path.endsWith('.parquet');
    const isTempManifest = f.path.startsWith('_manifest.json.tmp-');
    if ((!isData && !isTempManifest) || live.has(f.path) || tomb.has(f.path)) continue;
    if (f.mtimeMs <= cutoff) {
      removeFile(tableDir, f.path);
      removedOrphans += 1;
    } else keptYoung += 1;
  }
  let version = base.version;
  if (removedTombstoned > 0) {
    version = commitManifest(tableDir, base, { operation: 'vacuum', files: base.files, removed: stillTombstoned, sourceOffset: base.sourceOffset }).version;
  }
  return { removedTombstoned, removedOrphans, keptYoung, version };
}

/** Where this module lives: the crash test runs `compactTable` from it in a child process (the exercise's `--solution` loads it like a learner's file). */
export const moduleUrl = import.meta.url;

/** The reference compactor with where its code lives (for the crash test's child process). */
export const referenceCompactor: Compactor = {
  compact: compactTable,
  source: { module: moduleUrl, exportName: 'compactTable' },
  // On Delta the reference is the engine's own OPTIMIZE (delta.ts), loaded only there.
  delta: { compact: async (...args) => (await import('./delta.ts')).optimizeTable(...args), takesRewrite: false },
};
