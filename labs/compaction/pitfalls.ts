/**
 * Three compactors people write. Each is a complete implementation of the same `CompactFn`; the
 * lab runs them through the same claim checks as the reference, which must reject every one.
 */
import { join } from 'node:path';
import type { Pitfall } from '../contract.ts';
// Imported from the modules themselves, not index.ts: the crash test loads this file in a child
// process, which should not pay for the Kafka and Parquet-writer libraries of the ingest.
import {
  compactChecking,
  describeWrittenFiles,
  emptyResult,
  planCompaction,
  rewritePartition,
  stagePartition,
  type CompactFn,
  type Compactor,
} from '../../pipelines/compaction/compact.ts';
import { commitManifest, partitionDir, readManifest, removeFile } from '../../pipelines/compaction/table.ts';
import { deltaInPlace, deltaRewriteChecking, type DeltaCompactor } from '../../pipelines/compaction/delta.ts';


/**
 * Rewrites each partition in place, the way `df.write.mode("overwrite")` onto the input path
 * does: read the partition, drop its files from the table, write the compacted file, add it.
 * The table is briefly without the partition (a reader sees rows missing), and a crash between
 * the two steps loses the partition for good.
 */
export const compactInPlace: CompactFn = async (db, tableDir, options) => {
  let m = readManifest(tableDir);
  const { plans, skipped } = planCompaction(m, options);
  const result = emptyResult(m.version, skipped);
  let n = 0;
  for (const p of plans) {
    const staged = await stagePartition(db, tableDir, p.inputs);
    // "Overwrite": the old files go first …
    const gone = new Set(p.inputs.map((f) => f.path));
    m = commitManifest(tableDir, m, { operation: 'overwrite-delete', files: m.files.filter((f) => !gone.has(f.path)), removed: m.removed, sourceOffset: m.sourceOffset });
    for (const f of p.inputs) removeFile(tableDir, f.path);
    await options.checkpoint?.({ n: ++n, kind: 'deleted', partition: p.key, files: [...gone] });
    // … then the new ones are written and added.
    const files = await rewritePartition(db, `SELECT * FROM ${staged.table}`, { dir: join(tableDir, partitionDir(p)), filePrefix: `overwrite-${m.version}`, targetBytes: options.targetBytes, sortBy: options.sortBy ?? 'ts' });
    const out = await describeWrittenFiles(db, tableDir, p, files);
    m = commitManifest(tableDir, m, { operation: 'overwrite-write', files: [...m.files, ...out.files], removed: m.removed, sourceOffset: m.sourceOffset });
    await options.checkpoint?.({ n: ++n, kind: 'written', partition: p.key, files: out.files.map((f) => f.path) });
    result.partitionsCompacted += 1;
    result.filesRemoved += p.inputs.length;
    result.filesWritten += out.files.length;
  }
  return { ...result, version: m.version, committed: plans.length > 0 };
};

/** The reference's write-aside-then-commit with the check before the commit weakened: none at all, or row counts only. */
export const compactWithoutVerification: CompactFn = compactChecking('none');
export const compactCheckingRowCountOnly: CompactFn = compactChecking('rows');

const here = import.meta.url;
const impl = (compact: CompactFn, exportName: string, delta: DeltaCompactor): Compactor => ({ compact, source: { module: here, exportName }, delta });

export const compactionPitfalls: Pitfall<Compactor>[] = [
  {
    name: 'rewrite-in-place',
    title: 'overwrites each partition in place: delete the old files, then write the new one',
    description:
      'The answer "read the partition, repartition, write it back with mode overwrite" deletes before it writes. ' +
      'Between the two steps the partition is empty for every reader, and a crash there loses it: the only copy of the rows was in memory.',
    // On Delta: DELETE the partition (one commit), then INSERT its rows back (another), held in between in the job's cache.
    impl: impl(compactInPlace, 'compactInPlace', { compact: deltaInPlace, takesRewrite: false }),
    shows: 'atomic',
  },
  {
    name: 'commit-without-verification',
    title: 'writes aside and commits atomically, but never checks what it wrote',
    description:
      'Atomic is not the same as correct: a rewrite with a bug (a unit mismatch, a stray filter) is committed just as atomically. ' +
      'The old files are tombstoned and vacuumed later, and with them the last good copy.',
    // On Delta: the hand-written job instead of OPTIMIZE — stage the rewrite, then one INSERT … REPLACE WHERE, unchecked.
    impl: impl(compactWithoutVerification, 'compactWithoutVerification', { compact: deltaRewriteChecking('none'), takesRewrite: true }),
  },
  {
    name: 'verify-row-count-only',
    title: 'checks the row count before committing, not the content',
    description:
      'The count catches a lost or doubled row but not a changed value: same number of rows, different data, committed. ' +
      'Only a content checksum over every column sees it.',
    impl: impl(compactCheckingRowCountOnly, 'compactCheckingRowCountOnly', { compact: deltaRewriteChecking('rows'), takesRewrite: true }),
  },
];
