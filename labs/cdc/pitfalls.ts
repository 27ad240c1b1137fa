/**
 * The wrong apply implementations the cdc claims must reject. Each batch-apply variant below is
 * imported by the apply process (it runs in its own process), so they are plain exported functions.
 */
import type { Pitfall } from '../contract.ts';
import type { ApplyBatchFn } from '../../pipelines/cdc/apply.ts';
import { applyBatchWith } from '../../pipelines/cdc/apply.ts';
import type { ApplyImpl } from '../../pipelines/cdc/apply-consumer.ts';

const HERE = import.meta.url;
const REFERENCE = new URL('../../pipelines/cdc/apply.ts', import.meta.url).href;

/** `ROW_NUMBER() OVER (PARTITION BY key ORDER BY ts_ms DESC)`: every change of one transaction ties. */
export const applyDedupByTsMs: ApplyBatchFn = applyBatchWith({ orderBy: 's._ts_ms DESC' });

/** `WHEN NOT MATCHED AND op IN ('c','r') THEN INSERT`: an update of a key the target never saw is dropped. */
export const applyInsertOnlyCreates: ApplyBatchFn = applyBatchWith({ insertOps: `'c', 'r'` });

/** Appends every change row (the after image) to the target: a change log, not a table. */
export const applyAppendChanges: ApplyBatchFn = async (db, input) =>
  db.transaction(async (tx) => {
    const rows = input.events.filter((e) => e.after !== null);
    const cols = input.table.columns.map((c) => c.name);
    await tx.insertRows(
      tx.dialect.ident(input.table.name),
      cols,
      rows.map((e) => cols.map((c) => e.after![c] ?? null)),
    );
    return { received: input.events.length, fresh: rows.length, merged: rows.length };
  });

export const cdcPitfalls: Pitfall<ApplyImpl>[] = [
  {
    name: 'dedup-by-ts-ms',
    title: 'keeps the latest change per key by ts_ms (ROW_NUMBER … ORDER BY ts_ms DESC)',
    description:
      'ts_ms is the commit time: every change inside one transaction has the same one, and two quick transactions can share a millisecond. ' +
      'With ties the "latest" row is whichever the sort puts first — often an earlier update — and the target keeps a stale value.',
    impl: { applyModule: HERE, applyExport: 'applyDedupByTsMs', commitOffsets: 'after-target-commit' },
  },
  {
    name: 'commit-offsets-first',
    title: 'commits the Kafka offsets before applying the batch',
    description:
      'Committing first feels safe ("we have read it"), but a crash between the offset commit and the target commit skips that batch forever: ' +
      'on restart the group resumes after it. Loss, silently, exactly once per crash.',
    impl: { applyModule: REFERENCE, applyExport: 'applyBatch', commitOffsets: 'before-apply' },
  },
  {
    name: 'insert-only-creates',
    title: "inserts only for op c/r (WHEN NOT MATCHED AND op IN ('c','r'))",
    description:
      'Reads naturally — "creates insert, updates update" — but after dedup a row created and then updated in the same batch arrives as one u, ' +
      'matches nothing in the target, and is dropped.',
    impl: { applyModule: HERE, applyExport: 'applyInsertOnlyCreates', commitOffsets: 'after-target-commit' },
  },
  {
    name: 'append-changes',
    title: 'appends change rows instead of merging',
    description:
      'Appending is fast and "keeps history", but the table now holds one row per change: duplicates for every updated key, deleted rows still there, ' +
      'and a replay appends everything again.',
    impl: { applyModule: HERE, applyExport: 'applyAppendChanges', commitOffsets: 'after-target-commit' },
  },
];
