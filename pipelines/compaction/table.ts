/**
 * A table = a directory of immutable Parquet files + one manifest naming the live ones.
 *
 *   <table>/_manifest.json                      { version, files: [...], removed: [...] }
 *   <table>/dt=2024-03-10/hour=02/*.parquet      data files (never modified once written)
 *
 * The manifest is the only thing that says which files are the table. It is replaced
 * atomically (write a temp file, fsync it, rename it over the old one, fsync the directory), so a
 * reader opens either the old version or the new one, never a half-written one, and a crash at
 * any point leaves one of the two. Files on disk that the manifest does not name are invisible
 * (in-flight writes, orphans of a crashed writer) until `vacuum` removes them.
 *
 * This is Delta Lake's `_delta_log` / Iceberg's metadata.json in miniature: one atomic pointer
 * swap makes a multi-file rewrite all-or-nothing.
 */
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join, relative } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { SqlEngine } from '../engines/types.ts';
import { LabError } from '../errors.ts';
import { fingerprintSql } from '../engines/sql-common.ts';

export interface DataFile {
  /** Relative to the table directory: `dt=2024-03-10/hour=02/part-b000001-000.parquet`. */
  path: string;
  dt: string;
  hour: number;
  rows: number;
  bytes: number;
}

export interface Manifest {
  format: 'de-lab-manifest/1';
  version: number;
  /** What produced this version: 'create' | 'append' | 'compact' | 'vacuum' | … */
  operation: string;
  files: DataFile[];
  /** Files dropped from the table, kept on disk until vacuum (readers of older versions may still read them). */
  removed: { path: string; removedAt: number }[];
  /** Streaming sink: the next Kafka offset to consume, committed with the files it produced. */
  sourceOffset?: string;
}

export const MANIFEST = '_manifest.json';

/** Commit lost a race: someone committed a version after the one this writer started from. */
export class CommitConflictError extends LabError {}

export function partitionDir(p: { dt: string; hour: number }): string {
  return `dt=${p.dt}/hour=${String(p.hour).padStart(2, '0')}`;
}

export function partitionKey(p: { dt: string; hour: number }): string {
  return partitionDir(p);
}

/** Creates an empty table (version 0). */
export function createTable(dir: string): Manifest {
  mkdirSync(dir, { recursive: true });
  const m: Manifest = { format: 'de-lab-manifest/1', version: 0, operation: 'create', files: [], removed: [] };
  writeManifestAtomically(dir, m);
  return m;
}

/** The current version: what a reader opening the table now sees. */
export function readManifest(dir: string): Manifest {
  const text = readFileSync(join(dir, MANIFEST), 'utf8');
  const m = JSON.parse(text) as Manifest;
  if (m.format !== 'de-lab-manifest/1' || !Array.isArray(m.files)) throw new LabError(`${join(dir, MANIFEST)} is not a de-lab manifest`);
  return m;
}

/**
 * Commits `next` as version `base.version + 1`, but only if the table is still at `base.version`
 * (a writer that started from an older version must re-plan). The check and the rename are not
 * one atomic step — a real table format uses a compare-and-swap (a conditional PUT, a catalog
 * transaction, `link()` of a versioned file); in this lab one writer commits at a time.
 */
export function commitManifest(dir: string, base: Manifest, next: Omit<Manifest, 'format' | 'version'>): Manifest {
  const current = readManifest(dir);
  if (current.version !== base.version) {
    throw new CommitConflictError(`commit conflict: started from version ${base.version}, table is at version ${current.version}`);
  }
  const m: Manifest = { format: 'de-lab-manifest/1', version: base.version + 1, ...next };
  writeManifestAtomically(dir, m);
  return m;
}

/** Temp file, fsync, rename over the manifest, fsync the directory: all-or-nothing, and durable. */
function writeManifestAtomically(dir: string, m: Manifest): void {
  const tmp = join(dir, `${MANIFEST}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const fd = openSync(tmp, 'wx');
  try {
    writeSync(fd, JSON.stringify(m));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, MANIFEST));
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/** Every regular file under the table directory (relative paths), manifest and temp files included. */
export function filesOnDisk(dir: string): { path: string; bytes: number; mtimeMs: number }[] {
  const out: { path: string; bytes: number; mtimeMs: number }[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.isFile()) {
        const st = statSync(full);
        out.push({ path: relative(dir, full), bytes: st.size, mtimeMs: st.mtimeMs });
      }
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** Parquet files on disk that the current manifest does not list as live. */
export function unreferencedFiles(dir: string, m: Manifest = readManifest(dir)): string[] {
  const live = new Set(m.files.map((f) => f.path));
  return dataFilesOnDisk(dir)
    .filter((f) => !live.has(f.path))
    .map((f) => f.path);
}

/** The table's data files on disk, live or not: Parquet files, outside a Delta log (whose checkpoints are Parquet too). */
export const dataFilesOnDisk = (dir: string) => filesOnDisk(dir).filter((f) => f.path.endsWith('.parquet') && !f.path.startsWith('_delta_log/'));

/**
 * A file path as a SQL string literal. Paths are ones we generated (a temp dir + dt=/hour=
 * segments + our file names); anything else is refused rather than escaped.
 */
export function pathLiteral(path: string): string {
  return `'${safePath(path)}'`;
}

/** `path` when it has only the characters of paths we generate (inlined in SQL: a literal, Spark's `delta.\`…\``); else refused. */
export function safePath(path: string): string {
  if (!/^[A-Za-z0-9_.:/=\-]+$/.test(path)) throw new Error(`refusing to inline unexpected path ${JSON.stringify(path)}`);
  return path;
}

/** `(dt = '…' AND hour = …)` of one partition, its values checked before they are inlined. */
export function partitionPredicate(p: { dt: string; hour: number }): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(p.dt) || !Number.isInteger(p.hour)) throw new Error(`unexpected partition ${JSON.stringify(p)}`);
  return `(dt = '${p.dt}' AND hour = ${p.hour})`;
}

/** `read_parquet([...])` over the given files of a table; partition columns come from the dt=/hour= path segments. */
export function parquetScan(dir: string, files: readonly { path: string }[]): string {
  const list = files.map((f) => pathLiteral(join(dir, f.path))).join(', ');
  return `read_parquet([${list}], hive_partitioning = true, hive_types = {'dt': VARCHAR, 'hour': INTEGER})`;
}

/** The event columns, as written by the streaming sink (partition columns live in the path). */
export const EVENT_COLUMNS = ['event_id', 'ts', 'user_id', 'event_type', 'amount_cents', 'country'] as const;

/** The event columns as the content fingerprint hashes them (fingerprintSql, one canonical hash per row). */
export const EVENT_HASH_COLUMNS = [
  { expr: 'event_id', kind: 'int' },
  { expr: 'ts', kind: 'timestamp' },
  { expr: 'user_id', kind: 'int' },
  { expr: 'event_type', kind: 'text' },
  { expr: 'amount_cents', kind: 'int' },
  { expr: 'country', kind: 'text' },
] as const;

export interface Fingerprint {
  rows: number;
  checksum: string;
}

/** Per-partition (rows, checksum) of the files a manifest lists: what a reader of that version sees. */
export async function partitionFingerprints(db: SqlEngine, dir: string, files: readonly DataFile[]): Promise<Map<string, Fingerprint>> {
  const out = new Map<string, Fingerprint>();
  if (files.length === 0) return out;
  const rows = await db.query<{ dt: string; hour: number; rows: number; checksum: string }>(fingerprintSql(db.dialect, parquetScan(dir, files), EVENT_HASH_COLUMNS, 'dt, hour'));
  for (const r of rows) out.set(partitionKey(r), { rows: Number(r.rows), checksum: r.checksum });
  return out;
}

/** Whole-table (rows, checksum): the sum over partitions (sums of hashes add up). */
export function tableFingerprint(parts: ReadonlyMap<string, Fingerprint>): Fingerprint {
  let rows = 0;
  let sum = 0n;
  for (const p of parts.values()) {
    rows += p.rows;
    sum += BigInt(p.checksum);
  }
  return { rows, checksum: sum.toString() };
}

/** Removes a file if present (vacuum, cleanup after a refused commit). */
export function removeFile(dir: string, path: string): void {
  rmSync(join(dir, path), { force: true });
}

/**
 * A copy of a table that shares its data files through hard links (data files are immutable,
 * so this is safe and instant); the manifest is copied. Each experiment of the lab starts from
 * such a copy of the ingested table.
 */
export function linkCopyTable(src: string, dst: string): void {
  mkdirSync(dst, { recursive: true });
  for (const e of readdirSync(src, { withFileTypes: true })) {
    const from = join(src, e.name);
    const to = join(dst, e.name);
    if (e.isDirectory()) linkCopyTable(from, to);
    else if (e.name.endsWith('.parquet')) linkSync(from, to);
    // The manifest, or a Delta log's entries: small, and a writer of the copy must not reach the original's.
    else if (e.isFile()) writeFileSync(to, readFileSync(from));
  }
}
