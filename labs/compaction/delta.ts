/**
 * The compaction lab on Delta Lake (`--engine spark`): the same stream, the same small files, the
 * same claims, with Delta's log as the table's manifest and the Spark driver as the process that
 * crashes. The steps fill the same state as on DuckDB, so the claim checks are the same code.
 *
 *   table     the shared ingested table's files, registered by CONVERT TO DELTA (one commit), once
 *             per stream; every step compacts a hard-linked copy of it (data files and log)
 *   compactor `Compactor.delta`: the reference is OPTIMIZE; the pitfalls are the jobs people write
 *   crash     SIGKILL the Spark driver once the table holds a data file no commit names (or at the
 *             compactor's 3rd checkpoint), start a new driver, check, re-run, VACUUM
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import type { LabContext } from '../contract.ts';
import {
  ConcurrentReader,
  EVENT_COLUMNS,
  convertToDelta,
  dataFilesOnDisk,
  deltaFingerprints,
  deltaManifest,
  deltaScan,
  deltaVersion,
  faultySelect,
  linkCopyTable,
  readDeltaSnapshot,
  unreferencedFiles,
  vacuumDelta,
  type Compactor,
  type DeltaCompactor,
  type Manifest,
} from '../../pipelines/compaction/index.ts';
import { sparkServer } from '../../pipelines/engines/spark/index.ts';
import type { SqlEngine } from '../../pipelines/engines/types.ts';
import { errorLine, UsageError } from '../../pipelines/errors.ts';
import { beforeAfter, median, timer } from './bench.ts';
import type { CrashEvidence } from './crash.ts';
import { COMPACTION_DEFAULTS, firstDifference, fresh, options, rowDiff, type Base, type CompactionState, type FaultRun, type MainEvidence } from './scenario.ts';

/** The ingested table as version 0 of a Delta table. */
export interface DeltaBase {
  dir: string;
  manifest: Manifest;
  convertMs: number;
}

/** The Delta compactor of `impl`, or one clear line for a compactor that has none (a learner's exercise). */
export function deltaOf(impl: Compactor): DeltaCompactor {
  if (!impl.delta) throw new UsageError('this compactor has no Delta Lake version (Compactor.delta): the exercise is written for the DuckDB table — run it without --engine spark');
  return impl.delta;
}

/**
 * The lab's Spark sessions (a compactor's and a reader's), each a fresh database with UTC and the
 * local tuning, one per driver: a crashed driver took its sessions with it.
 */
const sessions = new WeakMap<object, Map<string, Promise<SqlEngine>>>();
export async function deltaSpark(ctx: LabContext, role: 'compactor' | 'reader' = 'compactor'): Promise<SqlEngine> {
  const server = await sparkServer(ctx.engines);
  let byRole = sessions.get(ctx.engines);
  if (!byRole) sessions.set(ctx.engines, (byRole = new Map()));
  const key = `${server.generation}:${role}`;
  let s = byRole.get(key);
  if (!s) byRole.set(key, (s = ctx.engines.target('spark', `compaction_${role}`)));
  return s;
}

/** Converted once per ingested table (engine set and stream), like the table itself. */
const converted = new Map<string, Promise<DeltaBase>>();
export function deltaBase(ctx: LabContext, base: Base): Promise<DeltaBase> {
  let p = converted.get(base.dir);
  if (!p) {
    p = (async () => {
      const spark = await deltaSpark(ctx);
      const dir = join(ctx.engines.tempDir('compaction-delta-base'), 'table');
      linkCopyTable(base.dir, dir);
      rmSync(join(dir, '_manifest.json'), { force: true });
      const t0 = performance.now();
      await convertToDelta(spark, dir);
      const convertMs = performance.now() - t0;
      return { dir, manifest: await deltaManifest(spark, dir), convertMs };
    })();
    p.catch(() => converted.delete(base.dir));
    converted.set(base.dir, p);
  }
  return p;
}

/** Step 3 on Delta: compact a copy while a reader (its own Spark session) reads the latest version in a loop. */
export async function compactWhileReadingDelta(ctx: LabContext, impl: Compactor, base: Base, delta: DeltaBase): Promise<MainEvidence> {
  const compactor = deltaOf(impl);
  const spark = await deltaSpark(ctx);
  const readerSpark = await deltaSpark(ctx, 'reader');
  const dir = fresh(ctx, delta, 'main');
  const before = await deltaManifest(spark, dir);
  // The lab's independent checksum (md5-based, the same number DuckDB computes from the sink's files).
  const reader = new ConcurrentReader(() => readDeltaSnapshot(readerSpark, dir), base.fingerprints);
  // A read here is two Spark statements (~0.3–1 s): a pause between reads leaves the compactor the
  // cores; the probes at its checkpoints still look at every window between its commits.
  reader.start(DELTA_READER_PAUSE_MS);
  const t0 = performance.now();
  let error: string | null = null;
  try {
    await compactor.compact(spark, dir, options({ checkpoint: () => reader.probe('checkpoint') }));
  } catch (err) {
    error = errorLine(err);
  }
  const ms = performance.now() - t0;
  await reader.probe('final');
  const report = await reader.stop();
  const after = await deltaManifest(spark, dir);
  return { dir, before, after, fingerprints: await deltaFingerprints(spark, dir), reader: report, error, ms };
}

/** Between a Delta reader's reads, ms (the lab's two cores are shared by the reader and the compactor). */
export const DELTA_READER_PAUSE_MS = 300;

/** The table's columns in order (CONVERT puts the partition columns last). */
const DELTA_COLUMNS = [...EVENT_COLUMNS, 'dt', 'hour'];

/** Step 4 on Delta: the faulty rewrites, each on its own copy — where the compactor has a rewrite to fault. */
export async function injectFaultsDelta(ctx: LabContext, impl: Compactor, base: Base, delta: DeltaBase): Promise<FaultRun[]> {
  const compactor = deltaOf(impl);
  const runs: FaultRun[] = [];
  for (const fault of ['drop-row', 'change-value'] as const) {
    if (!compactor.takesRewrite) {
      runs.push({ fault, committed: false, error: null, unchanged: true, diff: null, notInjectable: true });
      continue;
    }
    const spark = await deltaSpark(ctx);
    const dir = fresh(ctx, delta, fault);
    let error: string | null = null;
    let committed = false;
    try {
      committed = (await compactor.compact(spark, dir, options({ rewriteSelect: faultySelect(fault, DELTA_COLUMNS) }))).committed;
    } catch (err) {
      error = errorLine(err);
    }
    const diff = firstDifference(base.fingerprints, await deltaFingerprints(spark, dir));
    const run: FaultRun = { fault, committed, error, unchanged: diff === null, diff: null };
    if (diff) run.diff = `${diff}; ${(await rowDiff(await ctx.engines.duckdb(), base.dir, base.manifest.files, dir, (await deltaManifest(spark, dir)).files)) ?? ''}`;
    runs.push(run);
  }
  return runs;
}

/** Step 5 on Delta: crash the driver mid-compaction, start a new one, check, re-run, VACUUM. */
export async function crashAndRecoverDelta(ctx: LabContext, impl: Compactor, base: Base, delta: DeltaBase): Promise<CrashEvidence> {
  const compactor = deltaOf(impl);
  const server = await sparkServer(ctx.engines);
  const dir = fresh(ctx, delta, 'crash');
  const spark = await deltaSpark(ctx);
  const m0 = await deltaManifest(spark, dir);
  const blank = blankCrash(m0.version);
  if (!server.crashDriver) return { ...blank, notJudged: "a cluster someone else runs (SPARK_REMOTE): its driver is not this lab's to kill" };
  const known = new Set(dataFilesOnDisk(dir).map((f) => f.path));
  const uncommitted = () => dataFilesOnDisk(dir).filter((f) => !known.has(f.path)).length;
  let crash: Promise<{ restartMs: number }> | null = null;
  let filesAtKill = 0;
  let atCheckpoint: number | null = null;
  const kill = () => {
    if (!crash) {
      filesAtKill = uncommitted();
      crash = server.crashDriver!();
      // Awaited once the compactor has stopped; until then a failed restart must not be an unhandled rejection.
      crash.catch(() => undefined);
    }
    return crash;
  };
  // Written, not yet committed: the moment a crash tests. The compactor's own checkpoints too
  // (a job of several commits is killed between them, as on DuckDB).
  const watch = setInterval(() => {
    if (uncommitted() > 0) void kill();
  }, 20);
  let childError: string | null = null;
  try {
    await compactor.compact(spark, dir, {
      ...options(),
      checkpoint: async (e) => {
        if (e.n < COMPACTION_DEFAULTS.crashAtCheckpoint || crash) return;
        atCheckpoint = e.n;
        await kill();
        throw new Error('the driver was killed at this checkpoint');
      },
    });
  } catch (err) {
    childError = errorLine(err);
  } finally {
    clearInterval(watch);
  }
  if (!crash) return { ...blank, childError: childError ?? 'the compaction finished before a data file appeared' };
  const { restartMs } = await (crash as Promise<{ restartMs: number }>);
  const after = await deltaSpark(ctx);
  let manifestValid = true;
  let m1 = m0;
  try {
    m1 = await deltaManifest(after, dir);
  } catch {
    manifestValid = false;
  }
  const missingFiles = m1.files.filter((f) => !existsSync(join(dir, f.path))).length;
  const differs = async () => {
    try {
      return firstDifference(base.fingerprints, await deltaFingerprints(after, dir));
    } catch (err) {
      return `table unreadable: ${errorLine(err)}`;
    }
  };
  const lost = await differs();
  const orphans = unreferencedFiles(dir, m1).length;
  let rerunOk = true;
  let rerunError: string | null = null;
  try {
    await compactor.compact(after, dir, options());
  } catch (err) {
    rerunOk = false;
    rerunError = errorLine(err);
  }
  const rerunUnchanged = (await differs()) === null;
  const rerunVersion = await deltaVersion(after, dir);
  const unreferencedBefore = unreferencedFiles(dir, await deltaManifest(after, dir)).length;
  await vacuumDelta(after, dir, COMPACTION_DEFAULTS.retentionMs / 3600_000);
  const keptYoung = unreferencedFiles(dir, await deltaManifest(after, dir)).length;
  const vac = await vacuumDelta(after, dir, 0);
  const mAfter = await deltaManifest(after, dir);
  return {
    killed: true,
    pid: undefined,
    atCheckpoint,
    filesWrittenBeforeKill: filesAtKill,
    childError,
    manifestValid,
    missingFiles,
    versionBefore: m0.version,
    versionAfter: m1.version,
    unchanged: manifestValid && missingFiles === 0 && lost === null && m1.version === m0.version,
    lost,
    orphans,
    rerunOk,
    rerunError,
    rerunUnchanged,
    rerunVersion,
    keptYoung,
    removedOrphans: Math.min(orphans, vac.removed),
    removedTombstoned: Math.max(0, vac.removed - orphans),
    vacuumRemoved: unreferencedBefore - unreferencedFiles(dir, mAfter).length,
    unreferencedAfterVacuum: unreferencedFiles(dir, mAfter).length,
    unchangedAfterVacuum: (await differs()) === null,
    versionAfterVacuum: mAfter.version,
    killedWhat: 'driver',
    driverRestartMs: restartMs,
  };
}

function blankCrash(version: number): CrashEvidence {
  return {
    killed: false,
    pid: undefined,
    atCheckpoint: null,
    filesWrittenBeforeKill: 0,
    childError: null,
    manifestValid: true,
    missingFiles: 0,
    versionBefore: version,
    versionAfter: version,
    unchanged: true,
    lost: null,
    orphans: 0,
    rerunOk: false,
    rerunError: null,
    rerunUnchanged: false,
    rerunVersion: version,
    keptYoung: 0,
    removedOrphans: 0,
    removedTombstoned: 0,
    vacuumRemoved: 0,
    versionAfterVacuum: version,
    unreferencedAfterVacuum: 0,
    unchangedAfterVacuum: false,
  };
}

/** Step 6 on Delta: compact the compacted table again. */
export async function compactAgainDelta(ctx: LabContext, impl: Compactor, dir: string): Promise<NonNullable<CompactionState['idempotent']>> {
  const spark = await deltaSpark(ctx);
  const onDisk = () => dataFilesOnDisk(dir).map((f) => f.path);
  const before = new Set(onDisk());
  const v0 = await deltaVersion(spark, dir);
  let error: string | null = null;
  try {
    await deltaOf(impl).compact(spark, dir, options());
  } catch (err) {
    error = errorLine(err);
  }
  return { filesWritten: onDisk().filter((f) => !before.has(f)).length, versionBefore: v0, versionAfter: await deltaVersion(spark, dir), error };
}

/** Runs of the read benchmark and of the throughput comparison on Spark: each statement costs ~0.5–3 s here. */
export const DELTA_RUNS = { bench: 5, throughput: 3 } as const;

/** Step 7 on Delta: the same aggregate query over the Delta base and the compacted copy, alternating. */
export async function readBenchDelta(ctx: LabContext, delta: DeltaBase, main: MainEvidence): Promise<NonNullable<CompactionState['bench']>> {
  const spark = await deltaSpark(ctx);
  const time = timer((sql) => spark.query(sql));
  const runs = await beforeAfter(time, COMPACTION_DEFAULTS.query(deltaScan(delta.dir)), COMPACTION_DEFAULTS.query(deltaScan(main.dir)), DELTA_RUNS.bench);
  // What every Spark query costs whatever the files (plan, schedule one job): the same query on a one-row table.
  const one = COMPACTION_DEFAULTS.query(`(SELECT DATE'2024-03-10' AS dt, 'view' AS event_type, 0 AS amount_cents) one_row`);
  const fixed: number[] = [];
  for (let i = 0; i < DELTA_RUNS.bench; i++) fixed.push((await time(one)).ms);
  return { ...runs, files: { before: delta.manifest.files.length, after: main.after.files.length }, fixedMs: median(fixed), engine: 'spark' };
}

/** Step 8 on Delta: the compactor against a plain Spark write of the same rows to Parquet (the floor), alternating. */
export async function throughputDelta(ctx: LabContext, impl: Compactor, base: Base, delta: DeltaBase): Promise<NonNullable<CompactionState['throughput']>> {
  const spark = await deltaSpark(ctx);
  const compactor = deltaOf(impl);
  const mb = base.manifest.files.reduce((s, f) => s + f.bytes, 0) / 1e6;
  const compactMs: number[] = [];
  const copyMs: number[] = [];
  for (let i = 0; i < DELTA_RUNS.throughput; i++) {
    const dir = fresh(ctx, delta, `throughput${i}`);
    const floorDir = fresh(ctx, delta, `floor${i}`);
    const out = join(ctx.workDir, `compaction-delta-floor-${randomBytes(3).toString('hex')}`);
    const t0 = performance.now();
    await compactor.compact(spark, dir, options());
    compactMs.push(performance.now() - t0);
    const t1 = performance.now();
    await spark.exec(`INSERT OVERWRITE DIRECTORY '${out}' USING parquet SELECT ${EVENT_COLUMNS.join(', ')} FROM ${deltaScan(floorDir)} ORDER BY ts`);
    copyMs.push(performance.now() - t1);
    for (const d of [out, dir, floorDir]) rmSync(d, { recursive: true, force: true });
  }
  return { mb, compactMs: median(compactMs), copyMs: median(copyMs), runs: { compactMs, copyMs } };
}
