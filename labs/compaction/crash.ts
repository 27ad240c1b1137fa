/** The crash step: SIGKILL the compactor process mid-run, check the table, re-run, vacuum. Writes evidence, prints nothing. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { LabContext } from '../contract.ts';
import { readManifest, startCompactorProcess, unreferencedFiles, vacuum, type Compactor, type CompactorProcess } from '../../pipelines/compaction/index.ts';
import { errorLine } from '../../pipelines/errors.ts';
import { COMPACTION_DEFAULTS, differenceFromBase, fresh, options, type Base } from './scenario.ts';

export interface CrashEvidence {
  killed: boolean;
  pid: number | undefined;
  atCheckpoint: number | null;
  filesWrittenBeforeKill: number;
  childError: string | null;
  manifestValid: boolean;
  missingFiles: number;
  versionBefore: number;
  versionAfter: number;
  unchanged: boolean;
  lost: string | null;
  orphans: number;
  rerunOk: boolean;
  rerunError: string | null;
  rerunUnchanged: boolean;
  rerunVersion: number;
  keptYoung: number;
  removedOrphans: number;
  removedTombstoned: number;
  vacuumRemoved: number;
  versionAfterVacuum: number;
  unreferencedAfterVacuum: number;
  unchangedAfterVacuum: boolean;
  /** Set when this run cannot crash its engine (an external Spark cluster), with why. */
  notJudged?: string;
  /** What was SIGKILLed: the compactor's process (DuckDB), or the Spark driver that makes Delta's commits. */
  killedWhat?: 'compactor' | 'driver';
  /** Spark: a new driver's start after the kill, ms. */
  driverRestartMs?: number;
}

/** The compactor process of the crash step, started early so that it boots while other steps run. */
export const startCrashProcess = (ctx: LabContext, impl: Compactor): CompactorProcess => startCompactorProcess(impl.source, { onStop: (kill) => ctx.engines.onStop(kill) });

/** Step 5: kill the compactor (already booted, or started now) at the configured checkpoint, then check, re-run and vacuum. */
export async function crashAndRecover(ctx: LabContext, impl: Compactor, base: Base, booted: CompactorProcess | undefined): Promise<CrashEvidence> {
  const dir = fresh(ctx, base, 'crash');
  const db = await ctx.engines.duckdb();
  const m0 = readManifest(dir);
  const proc = booted ?? startCrashProcess(ctx, impl);
  const child = await proc.run(dir, { targetBytes: COMPACTION_DEFAULTS.targetBytes, smallFileBytes: COMPACTION_DEFAULTS.smallFileBytes, sortBy: 'ts' }, {
    crashAtCheckpoint: COMPACTION_DEFAULTS.crashAtCheckpoint,
  });
  let manifestValid = true;
  let m1 = m0;
  try {
    m1 = readManifest(dir);
  } catch {
    manifestValid = false;
  }
  const missingFiles = m1.files.filter((f) => !existsSync(join(dir, f.path))).length;
  let lost: string | null = null;
  try {
    lost = await differenceFromBase(db, base, dir);
  } catch (err) {
    lost = `table unreadable: ${errorLine(err)}`;
  }
  const orphans = unreferencedFiles(dir, m1).length;
  let rerunOk = true;
  let rerunError: string | null = null;
  try {
    await impl.compact(db, dir, options());
  } catch (err) {
    rerunOk = false;
    rerunError = errorLine(err);
  }
  const rerunUnchanged = (await differenceFromBase(db, base, dir)) === null;
  const rerunVersion = readManifest(dir).version;
  const young = vacuum(dir, { retentionMs: COMPACTION_DEFAULTS.retentionMs });
  const vac = vacuum(dir, { retentionMs: 0 });
  return {
    killed: child.killed,
    pid: child.pid,
    atCheckpoint: child.killed ? (child.checkpoints.at(-1)?.n ?? null) : null,
    filesWrittenBeforeKill: child.checkpoints.filter((c) => c.kind === 'written').reduce((s, c) => s + c.files.length, 0),
    childError: child.error ?? null,
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
    keptYoung: young.keptYoung,
    removedOrphans: vac.removedOrphans,
    removedTombstoned: vac.removedTombstoned,
    vacuumRemoved: vac.removedOrphans + vac.removedTombstoned,
    unreferencedAfterVacuum: unreferencedFiles(dir).length,
    unchangedAfterVacuum: (await differenceFromBase(db, base, dir)) === null,
    versionAfterVacuum: readManifest(dir).version,
  };
}
