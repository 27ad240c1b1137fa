/**
 * The compaction lab's claims, as pure checks over the run's evidence. A check whose step did not
 * run fails with that as its counterexample (`requires`).
 */
import { requires, type ClaimResult } from '../contract.ts';
import { partitionKey, type DataFile } from '../../pipelines/compaction/index.ts';
import { median } from './bench.ts';
import type { CrashEvidence } from './crash.ts';
import { COMPACTION_DEFAULTS, firstDifference, type CompactionState as S } from './scenario.ts';

export const MIN_FILE_RATIO = 50;
export const MIN_SPEEDUP = 5;

export const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;

export const fewerFiles = requires<S, 'main'>('main', (main): ClaimResult => {
  const before = main.before.files.length;
  const after = main.after.files.length;
  const old = new Set(main.before.files.map((f) => f.path));
  const target = COMPACTION_DEFAULTS.targetBytes;
  const off = new Map<string, DataFile[]>();
  for (const f of main.after.files) {
    if (old.has(f.path) || (f.bytes >= 0.5 * target && f.bytes <= 1.5 * target)) continue;
    const k = partitionKey(f);
    off.set(k, [...(off.get(k) ?? []), f]);
  }
  const bad = [...off.entries()].filter(([, fs]) => fs.length > 1);
  const ratio = after > 0 ? before / after : 0;
  const passed = !main.error && ratio >= MIN_FILE_RATIO && bad.length === 0;
  return {
    passed,
    evidence: { files_before: before, files_after: after, ratio: Math.round(ratio * 10) / 10, target_kb: target / 1024, partitions_with_2plus_off_target: bad.length },
    counterexample: passed
      ? undefined
      : main.error
        ? `compaction failed: ${main.error}`
        : bad.length
          ? `${bad[0]![0]}: ${bad[0]![1].length} files outside ${kb(0.5 * target)}–${kb(1.5 * target)}: ${bad[0]![1].slice(0, 4).map((f) => kb(f.bytes)).join(', ')}`
          : `${before} files → ${after}: only ${ratio.toFixed(1)}×`,
  };
});

export const sameData = requires<S, 'main'>('main', (main, { base, faults }): ClaimResult => {
  if (!base) return { passed: false, evidence: {}, counterexample: 'the compaction step did not run' };
  const diff = main.error ? `compaction failed: ${main.error}` : firstDifference(base.fingerprints, main.fingerprints);
  const leaked = faults.filter((f) => !f.unchanged);
  const injected = faults.filter((f) => !f.notInjectable);
  const passed = !diff && leaked.length === 0 && faults.length === 2;
  return {
    passed,
    evidence: {
      partitions: base.fingerprints.size,
      partitions_equal: [...base.fingerprints.keys()].filter((k) => main.fingerprints.get(k)?.checksum === base.fingerprints.get(k)!.checksum && main.fingerprints.get(k)?.rows === base.fingerprints.get(k)!.rows).length,
      // OPTIMIZE rewrites with Delta's own code: there is no rewrite of ours to fault, and the lab says so.
      faulty_rewrites_refused: injected.length === 0 && faults.length > 0 ? 'not injectable (the engine rewrites)' : `${injected.length - leaked.length}/${injected.length}`,
    },
    counterexample: passed ? undefined : diff ?? (leaked[0] ? `a rewrite that ${leaked[0].fault === 'drop-row' ? 'drops a row' : 'changes one value'} was committed: ${leaked[0].diff}` : 'fault injection did not run'),
  };
});

export const querySpeedup = (bench: NonNullable<S['bench']>) => median(bench.beforeMs) / Math.max(1e-9, median(bench.afterMs));

export const fasterReads = requires<S, 'bench'>('bench', (bench): ClaimResult => {
  const b = median(bench.beforeMs);
  const a = median(bench.afterMs);
  const speedup = a > 0 ? b / a : 0;
  const passed = bench.resultsEqual && speedup >= MIN_SPEEDUP;
  const evidence = { median_ms_before: Math.round(b * 10) / 10, median_ms_after: Math.round(a * 10) / 10, speedup: Math.round(speedup * 10) / 10, runs: bench.beforeMs.length };
  if (bench.fixedMs !== undefined && bench.resultsEqual && !passed) {
    // Spark: every query pays a fixed cost (plan, schedule a job) that no file layout removes; at
    // lab scale it is most of the compacted read. The bar is set for reads whose cost is the files.
    const f = bench.fixedMs;
    const above = a > f ? (b - f) / (a - f) : Infinity;
    return {
      passed: false,
      evidence: { ...evidence, fixed_ms: Math.round(f), speedup_above_fixed: Number.isFinite(above) ? Math.round(above * 10) / 10 : 'all of it' },
      notJudged: `${speedup.toFixed(1)}× on Spark, where a query on a one-row table takes ${Math.round(f)} ms of the ${Math.round(a)} ms after compaction: the ${MIN_SPEEDUP}× bar is set for reads whose cost is the files (DuckDB in-process)`,
    };
  }
  return {
    passed,
    evidence,
    counterexample: passed ? undefined : !bench.resultsEqual ? 'the query returned different results before and after' : `only ${speedup.toFixed(1)}× faster`,
  };
});

export const atomic = requires<S, 'main'>('main', (main): ClaimResult => {
  const r = main.reader;
  const passed = r.reads >= 2 && r.badReads === 0 && !main.error;
  return {
    passed,
    evidence: { reads: r.reads, bad_reads: r.badReads, versions_seen: r.versionsSeen.join('→') },
    counterexample: passed ? undefined : (r.firstBad ?? main.error ?? `only ${r.reads} reads`),
  };
});

function crashWhy(c: CrashEvidence): string {
  if (!c.killed) return `the compactor was never killed: it did not reach checkpoint ${COMPACTION_DEFAULTS.crashAtCheckpoint}${c.childError ? ` (${c.childError})` : ''}`;
  if (c.filesWrittenBeforeKill === 0) return 'killed before it had written any file';
  if (!c.manifestValid) return 'after the kill the manifest does not parse';
  if (c.missingFiles > 0) return `after the kill the manifest names ${c.missingFiles} files that are not on disk`;
  if (!c.unchanged) return `after SIGKILL ${c.killedWhat === 'driver' ? `of the Spark driver${c.atCheckpoint ? ` at checkpoint ${c.atCheckpoint}` : ' (data files written, not committed)'}` : `at checkpoint ${c.atCheckpoint}`} the table changed (version ${c.versionBefore} → ${c.versionAfter}): ${c.lost}`;
  if (!c.rerunOk) return `re-run failed: ${c.rerunError}`;
  if (!c.rerunUnchanged) return 're-run changed the data';
  if (c.unreferencedAfterVacuum > 0) return `${c.unreferencedAfterVacuum} unreferenced files left after vacuum`;
  return 'vacuum changed the data';
}

export const crashSafe = requires<S, 'crash'>('crash', (c): ClaimResult => {
  if (c.notJudged) return { passed: false, evidence: {}, notJudged: c.notJudged };
  const passed =
    c.killed && c.filesWrittenBeforeKill > 0 && c.manifestValid && c.missingFiles === 0 && c.unchanged && c.rerunOk && c.rerunUnchanged && c.unreferencedAfterVacuum === 0 && c.unchangedAfterVacuum;
  return {
    passed,
    evidence: {
      ...(c.killedWhat === 'driver' ? { killed: 'Spark driver', driver_restart_ms: c.driverRestartMs ?? null } : { killed_at_checkpoint: c.atCheckpoint }),
      files_written_before_kill: c.filesWrittenBeforeKill,
      unchanged_after_kill: c.unchanged,
      orphans: c.orphans,
      rerun_ok: c.rerunOk && c.rerunUnchanged,
      vacuum_removed: c.vacuumRemoved,
      unreferenced_after: c.unreferencedAfterVacuum,
    },
    counterexample: passed ? undefined : crashWhy(c),
  };
});

export const idempotent = requires<S, 'idempotent'>('idempotent', (i): ClaimResult => {
  const passed = !i.error && i.filesWritten === 0 && i.versionAfter === i.versionBefore;
  return {
    passed,
    evidence: { files_written: i.filesWritten, version_before: i.versionBefore, version_after: i.versionAfter },
    counterexample: passed ? undefined : (i.error ?? `the second run wrote ${i.filesWritten} files and moved the table to version ${i.versionAfter}`),
  };
});

export const triggerTradeoff = requires<S, 'tradeoff'>('tradeoff', (t, { base }): ClaimResult => {
  if (!base) return { passed: false, evidence: {}, counterexample: 'the trade-off step did not run' };
  const fewer = t.plans.every((p, i) => i === 0 || p.files <= t.plans[i - 1]!.files);
  const staler = t.plans.every((p, i) => i === 0 || p.worstFreshnessMs >= t.plans[i - 1]!.worstFreshnessMs);
  const exact = t.plannedAtIngestTrigger === base.sink.filesWritten;
  const passed = fewer && staler && exact;
  const first = t.plans[0]!;
  const last = t.plans[t.plans.length - 1]!;
  return {
    passed,
    evidence: {
      [`files_at_${first.triggerMs / 1000}s`]: first.files,
      [`files_at_${last.triggerMs / 1000}s`]: last.files,
      sink_files: base.sink.filesWritten,
      planned_files: t.plannedAtIngestTrigger,
    },
    counterexample: passed ? undefined : !exact ? `the sink wrote ${base.sink.filesWritten} files, the plan says ${t.plannedAtIngestTrigger}` : 'files or freshness not monotonic in the trigger interval',
  };
});
