/**
 * The same table on Delta Lake (`--engine spark`): the stream's small files registered in a Delta
 * log, compacted by Delta's own `OPTIMIZE`, read through the log. Everything goes through a
 * Spark session as SQL (`SqlEngine`), so this module loads nothing of Spark's client itself.
 *
 *   convertToDelta   CONVERT TO DELTA: one commit that names the sink's Parquet files as they are
 *   deltaManifest    a version's live files (path, partition, rows, bytes), as the manifest has them
 *   readDeltaSnapshot one reader's read: pin the latest version, then rows + checksum per partition
 *   optimizeTable    the reference: OPTIMIZE, its output sized by rows (see `rowsPerFile`)
 *   vacuumDelta      VACUUM with a retention, as `vacuum` does for the manifest table
 *
 * Local paths only: the cluster and this process share the file system (the local cluster, or a
 * remote one with the same mount).
 */
import { randomBytes } from 'node:crypto';
import type { SqlEngine } from '../engines/types.ts';
import { fingerprintSql } from '../engines/sql-common.ts';
import { emptyResult, planCompaction, VerificationError, type CompactionCheck, type CompactOptions, type CompactResult } from './compact.ts';
import { EVENT_COLUMNS, EVENT_HASH_COLUMNS, dataFilesOnDisk, partitionKey, partitionPredicate, safePath, type DataFile, type Fingerprint, type Manifest } from './table.ts';
import type { SnapshotRead } from './reader.ts';

/** A compactor for the Delta table: the Spark session, the table's directory, the lab's options. */
export type DeltaCompactFn = (spark: SqlEngine, tableDir: string, options: CompactOptions) => Promise<CompactResult>;

export interface DeltaCompactor {
  compact: DeltaCompactFn;
  /**
   * false: the rewrite is the engine's own code (OPTIMIZE) and takes no `rewriteSelect`, so no
   * fault can be put into it; the lab says so instead of pretending to have tested it.
   */
  takesRewrite: boolean;
}

/** `delta.\`<dir>\``, optionally at a version. Paths are ones we generated; anything else is refused. */
export function deltaScan(dir: string, version?: number): string {
  return `delta.\`${safePath(dir)}\`${version === undefined ? '' : ` VERSION AS OF ${Math.trunc(version)}`}`;
}

/** One commit: the sink's files, as they are, become version 0 of a Delta table (no file is read for statistics). */
export async function convertToDelta(spark: SqlEngine, dir: string): Promise<void> {
  await spark.exec(`CONVERT TO DELTA parquet.\`${safePath(dir)}\` NO STATISTICS PARTITIONED BY (dt STRING, hour INT)`);
}

/** The latest version of the table (its log's newest commit). */
export async function deltaVersion(spark: SqlEngine, dir: string): Promise<number> {
  const [h] = await spark.query<{ version: number | bigint }>(`DESCRIBE HISTORY ${deltaScan(dir)} LIMIT 1`);
  if (!h) throw new Error(`${dir}: no Delta history`);
  return Number(h.version);
}

/** A file path Spark reports (`file:/tmp/…/dt=…/x.parquet`), relative to the table directory. */
function relativePath(dir: string, path: string): string {
  const p = decodeURIComponent(path.replace(/^file:(\/\/)?/, ''));
  const root = dir.endsWith('/') ? dir : `${dir}/`;
  return p.startsWith(root) ? p.slice(root.length) : p;
}

/** A version's live files as manifest entries, read through Delta (the `_metadata` column): what a reader of that version reads. */
export async function deltaManifest(spark: SqlEngine, dir: string, version?: number): Promise<Manifest> {
  // One history read: its newest entry, or the version asked for (each statement costs ~0.3–1 s here).
  const [h] = await spark.query<{ version: number | bigint; operation: string }>(
    version === undefined ? `DESCRIBE HISTORY ${deltaScan(dir)} LIMIT 1` : `SELECT version, operation FROM (DESCRIBE HISTORY ${deltaScan(dir)}) WHERE version = ${Math.trunc(version)}`,
  );
  if (!h) throw new Error(`${dir}: no Delta history${version === undefined ? '' : ` at version ${version}`}`);
  const v = Number(h.version);
  const rows = await spark.query<{ path: string; bytes: number | bigint; dt: string; hour: number; rows: number | bigint }>(
    `SELECT _metadata.file_path AS path, _metadata.file_size AS bytes, dt, hour, count(*) AS rows FROM ${deltaScan(dir, v)} GROUP BY 1, 2, 3, 4`,
  );
  const files: DataFile[] = rows
    .map((r) => ({ path: relativePath(dir, r.path), dt: r.dt, hour: Number(r.hour), rows: Number(r.rows), bytes: Number(r.bytes) }))
    .sort((a, b) => a.path.localeCompare(b.path));
  return { format: 'de-lab-manifest/1', version: v, operation: h.operation, files, removed: [] };
}


/** Per partition (rows, the md5-based Dialect checksum) of one version: the same numbers DuckDB computes from the sink's files. */
export async function deltaFingerprints(spark: SqlEngine, dir: string, version?: number): Promise<Map<string, Fingerprint>> {
  const rows = await spark.query<{ dt: string; hour: number; rows: number | bigint; checksum: string }>(fingerprintSql(spark.dialect, deltaScan(dir, version), EVENT_HASH_COLUMNS, 'dt, hour'));
  return new Map(rows.map((r) => [partitionKey({ dt: r.dt, hour: Number(r.hour) }), { rows: Number(r.rows), checksum: String(r.checksum) }]));
}

/** A reader's read: the latest version pinned first, then that version read (a query never sees a commit land mid-read). */
export async function readDeltaSnapshot(spark: SqlEngine, dir: string): Promise<SnapshotRead> {
  const version = await deltaVersion(spark, dir);
  const partitions = await deltaFingerprints(spark, dir, version);
  let rows = 0;
  let sum = 0n;
  for (const p of partitions.values()) {
    rows += p.rows;
    sum += BigInt(p.checksum);
  }
  return { version, files: -1, partitions, rows, checksum: sum.toString() };
}

/**
 * Bytes per row of a compacted file of this stream, measured: 18.5–19.7 in Spark's Snappy Parquet
 * files of 1,800–4,900 rows (2 KB sink files hold ~37 rows at ~140 bytes each: mostly footer).
 */
export const DELTA_BYTES_PER_ROW = 19;

/**
 * Rows per output file for a target size. Spark writes files by row count (`maxRecordsPerFile`),
 * not by bytes; and OPTIMIZE's own `maxFileSize` packs *input* bytes into each file. Small files
 * compress several times worse than one merged file (1.26 MB of sink files hold 0.45 MB of data),
 * so `maxFileSize = target` gives files of a quarter of the target, which are small again at the
 * next OPTIMIZE (measured: a second OPTIMIZE rewrote 4 of them into 2, not idempotent).
 */
export const rowsPerFile = (targetBytes: number) => Math.max(1024, Math.floor(targetBytes / DELTA_BYTES_PER_ROW));

/** Runs `fn` with session settings, restoring each afterwards (RESET: the session's default). */
async function withSettings<T>(spark: SqlEngine, settings: Record<string, string | number>, fn: () => Promise<T>): Promise<T> {
  for (const [k, v] of Object.entries(settings)) await spark.exec(`SET ${k} = ${v}`);
  try {
    return await fn();
  } finally {
    for (const k of Object.keys(settings)) await spark.exec(`RESET ${k}`).catch(() => undefined);
  }
}

/** How compacted files are cut: by rows (see `rowsPerFile`); OPTIMIZE takes every small file of a partition into one bin. */
const writeSettings = (options: CompactOptions) => ({
  'spark.sql.files.maxRecordsPerFile': rowsPerFile(options.targetBytes),
  'spark.databricks.delta.optimize.minFileSize': options.smallFileBytes ?? Math.floor(options.targetBytes * 0.75),
  'spark.databricks.delta.optimize.maxFileSize': 1 << 30,
});


/**
 * The reference on Delta: `OPTIMIZE`. Delta writes the new files beside the old ones, then commits
 * one log entry (old files removed, new ones added, `dataChange = false`); a reader resolves a
 * version first, so it sees before or after. A partition with fewer than two small files is left
 * alone, which is what makes a second run commit nothing. No sort: OPTIMIZE keeps read order
 * (ZORDER BY would sort, and rewrites every time).
 */
export const optimizeTable: DeltaCompactFn = async (spark, tableDir, options) => {
  const before = await deltaVersion(spark, tableDir);
  const [r] = await withSettings(spark, writeSettings(options), () => spark.query<{ metrics: unknown }>(`OPTIMIZE ${deltaScan(tableDir)}`));
  const metrics = parseMetrics(r?.metrics);
  const version = await deltaVersion(spark, tableDir);
  const committed = version !== before;
  if (committed) await options.checkpoint?.({ n: 1, kind: 'committed', partition: '*', files: [] });
  return {
    version,
    committed,
    partitionsCompacted: Number(metrics.partitionsOptimized ?? 0),
    partitionsSkipped: 0,
    filesRemoved: Number(metrics.numFilesRemoved ?? 0),
    filesWritten: Number(metrics.numFilesAdded ?? 0),
    bytesRead: Number(metrics.filesRemoved?.totalSize ?? 0),
    bytesWritten: Number(metrics.filesAdded?.totalSize ?? 0),
  };
};

interface OptimizeMetrics {
  numFilesAdded?: number;
  numFilesRemoved?: number;
  partitionsOptimized?: number;
  filesAdded?: { totalSize?: string | number };
  filesRemoved?: { totalSize?: string | number };
}

function parseMetrics(m: unknown): OptimizeMetrics {
  if (typeof m === 'string') {
    try {
      return JSON.parse(m) as OptimizeMetrics;
    } catch {
      return {};
    }
  }
  return (m && typeof m === 'object' ? m : {}) as OptimizeMetrics;
}


/**
 * A pitfall: the textbook "read the partition, then overwrite it", on Delta as two commits per
 * partition — DELETE the partition, then INSERT its rows back from a scratch table they were
 * copied to first. Between the two a reader sees the partition empty, and a crash there leaves it
 * empty: the rows sit in a scratch table no one will look in. (Holding them in `CACHE TABLE`
 * instead is worse: Spark recomputes a cache whose source changed, and the INSERT writes nothing.)
 */
export const deltaInPlace: DeltaCompactFn = async (spark, tableDir, options) => {
  const m = await deltaManifest(spark, tableDir);
  const { plans, skipped } = planCompaction(m, options);
  const result = emptyResult(m.version, skipped);
  const scan = deltaScan(tableDir);
  let n = 0;
  for (const p of plans) {
    const held = `compaction_held_${randomBytes(4).toString('hex')}`;
    await spark.exec(`CREATE TABLE ${held} AS SELECT * FROM ${deltaScan(tableDir, m.version)} WHERE ${partitionPredicate(p)}`);
    try {
      await spark.exec(`DELETE FROM ${scan} WHERE ${partitionPredicate(p)}`);
      await options.checkpoint?.({ n: ++n, kind: 'deleted', partition: p.key, files: p.inputs.map((f) => f.path) });
      await withSettings(spark, writeSettings(options), () => spark.exec(`INSERT INTO ${scan} SELECT * FROM ${held}`));
      await options.checkpoint?.({ n: ++n, kind: 'written', partition: p.key, files: [] });
    } finally {
      await spark.exec(`DROP TABLE IF EXISTS ${held}`).catch(() => undefined);
    }
    result.partitionsCompacted += 1;
    result.filesRemoved += p.inputs.length;
  }
  return { ...result, version: await deltaVersion(spark, tableDir), committed: plans.length > 0 };
};

/** Rows and Spark's native 64-bit row hash (xxhash64), summed exactly, per partition of a SELECT: the hand-written job's own check. */
async function nativeFingerprints(spark: SqlEngine, from: string): Promise<Map<string, Fingerprint>> {
  const rows = await spark.query<{ dt: string; hour: number; rows: number | bigint; checksum: string }>(
    `SELECT dt, hour, count(*) AS rows, CAST(COALESCE(sum(CAST(xxhash64(${EVENT_COLUMNS.join(', ')}) AS DECIMAL(38,0))), 0) AS STRING) AS checksum FROM ${from} GROUP BY dt, hour`,
  );
  return new Map(rows.map((r) => [partitionKey({ dt: r.dt, hour: Number(r.hour) }), { rows: Number(r.rows), checksum: String(r.checksum) }]));
}

/**
 * The compaction job people write when they do not use OPTIMIZE: rewrite the planned partitions
 * into a staging table (the `rewriteSelect` the lab can fault), check it (`check`), then ONE
 * commit — `INSERT … REPLACE WHERE` those partitions from the stage. Atomic; correct only if
 * the check is. The lab's pitfalls run it with no check and with a row count only.
 */
export function deltaRewriteChecking(check: CompactionCheck): DeltaCompactFn {
  return async (spark, tableDir, options) => {
    const m = await deltaManifest(spark, tableDir);
    const { plans, skipped } = planCompaction(m, options);
    const result = emptyResult(m.version, skipped);
    if (plans.length === 0) return result;
    const where = plans.map(partitionPredicate).join(' OR ');
    const source = `SELECT * FROM ${deltaScan(tableDir, m.version)} WHERE ${where}`;
    const stage = `compaction_stage_${randomBytes(4).toString('hex')}`;
    const rewrite = options.rewriteSelect ?? ((s: string) => s);
    try {
      await spark.exec(`CREATE TABLE ${stage} AS ${rewrite(source)}`);
      if (check !== 'none') {
        const [read, wrote] = [await nativeFingerprints(spark, `(${source}) src`), await nativeFingerprints(spark, stage)];
        for (const p of plans) {
          const a = read.get(p.key) ?? { rows: 0, checksum: '0' };
          const b = wrote.get(p.key) ?? { rows: 0, checksum: '0' };
          if (a.rows !== b.rows || (check === 'rows-and-checksum' && a.checksum !== b.checksum))
            throw new VerificationError(`${p.key}: read ${a.rows} rows, wrote ${b.rows}${a.rows === b.rows ? ' with a different checksum' : ''}: not committed`);
        }
      }
      // The one commit. (REPLACE WHERE replaces what the LATEST version holds there: a writer that
      // appended to these partitions since m.version would lose its rows. Refuse that case.)
      if ((await deltaVersion(spark, tableDir)) !== m.version) throw new Error(`${tableDir}: the table moved past version ${m.version} during the rewrite: not committed`);
      await withSettings(spark, writeSettings(options), () =>
        spark.exec(`INSERT INTO ${deltaScan(tableDir)} REPLACE WHERE ${where} SELECT ${[...EVENT_COLUMNS, 'dt', 'hour'].join(', ')} FROM ${stage} DISTRIBUTE BY dt, hour`),
      );
    } finally {
      await spark.exec(`DROP TABLE IF EXISTS ${stage}`).catch(() => undefined);
    }
    await options.checkpoint?.({ n: 1, kind: 'committed', partition: '*', files: [] });
    const after = await deltaManifest(spark, tableDir);
    const old = new Set(m.files.map((f) => f.path));
    const added = after.files.filter((f) => !old.has(f.path));
    return {
      ...result,
      version: after.version,
      committed: true,
      partitionsCompacted: plans.length,
      filesRemoved: plans.reduce((s, p) => s + p.inputs.length, 0),
      filesWritten: added.length,
      bytesRead: plans.reduce((s, p) => s + p.inputs.reduce((t, f) => t + f.bytes, 0), 0),
      bytesWritten: added.reduce((s, f) => s + f.bytes, 0),
    };
  };
}

/**
 * VACUUM: deletes data files the latest version does not read — replaced ones, and files no commit
 * ever named (a crashed writer's) — once older than the retention. Delta refuses a retention under
 * 7 days unless its check is turned off, which a lab (retention 1 h, then 0) has to do.
 */
export async function vacuumDelta(spark: SqlEngine, tableDir: string, retentionHours: number): Promise<{ removed: number }> {
  const before = dataFilesOnDisk(tableDir).length;
  await withSettings(spark, { 'spark.databricks.delta.retentionDurationCheck.enabled': 'false' }, () => spark.exec(`VACUUM ${deltaScan(tableDir)} RETAIN ${retentionHours} HOURS`));
  return { removed: before - dataFilesOnDisk(tableDir).length };
}
