/**
 * The incremental loads interview answers commonly give, each the reference with one piece wrong.
 * The lab runs each through the same claim checks; tests/incremental.test.ts asserts which claim
 * rejects which. Each extractor is exported so the crash test's child process can load it.
 */
import type { Pitfall } from '../contract.ts';
import type { SqlEngine } from '../../pipelines/engines/types.ts';
import {
  ORDER_COLUMN_NAMES,
  TARGET,
  backfillRange,
  extractNaiveMax,
  extractWith,
  inRange,
  mergeStage,
  readChanges,
  readRange,
  readState,
  saveState,
  sourceSelectList,
  stageRows,
  type BackfillFn,
  type ExtractFn,
  type PlanExtraction,
} from '../../pipelines/incremental/index.ts';
import { planExtraction } from '../../pipelines/incremental/extract.ts';
import type { IncrementalImpl } from './scenario.ts';

const here = import.meta.url;

/** The watermark is the extractor's own clock when it starts; nothing holds it back for open transactions. */
const wallClockPlan: PlanExtraction = async (src, saved, { table, transform }) => {
  const [w] = await src.query<{ next: Date }>(`SELECT date_trunc('milliseconds', statement_timestamp()) AS next`);
  const from = src.dialect.ident(table);
  return saved
    ? { sql: `SELECT ${sourceSelectList(transform)} FROM ${from} WHERE updated_at >= $1`, params: [saved], next: w!.next }
    : { sql: `SELECT ${sourceSelectList(transform)} FROM ${from}`, params: [], next: w!.next };
};
export const extractWallClock: ExtractFn = extractWith(wallClockPlan);

/**
 * The state is advanced in its own transaction, committed before the data's: a crash between the
 * two leaves a watermark past rows that never landed, and no rerun reads them again.
 */
export const extractStateFirst: ExtractFn = async (src, target, options = {}) => {
  const t0 = performance.now();
  const pipeline = options.pipeline ?? 'orders';
  const table = options.table ?? 'orders';
  const saved = await readState(target, pipeline);
  const p = await planExtraction(src, saved.watermark, { table, transform: options.transform ?? 'v1', safetyMarginMs: options.safetyMarginMs ?? 100 });
  const read = await readChanges(src, table, p.sql, p.params);
  await target.transaction((tx) => saveState(tx, pipeline, p.next, saved.runs + 1));
  await target.transaction(async (tx) => {
    await stageRows(tx, read.rows);
    await mergeStage(tx);
    await options.checkpoint?.('data-written');
  });
  return { from: saved.watermark?.toISOString() ?? null, next: p.next?.toISOString() ?? null, rowsRead: read.rows.length, rowsScanned: read.scanned, ms: performance.now() - t0 };
};

/** INSERT the extracted rows instead of MERGE: every row read again (the `>=` boundary, a retry) lands twice. */
export const extractAppend: ExtractFn = async (src, target, options = {}) => {
  const t0 = performance.now();
  const pipeline = options.pipeline ?? 'orders';
  const table = options.table ?? 'orders';
  const saved = await readState(target, pipeline);
  const p = await planExtraction(src, saved.watermark, { table, transform: options.transform ?? 'v1', safetyMarginMs: options.safetyMarginMs ?? 100 });
  const read = await readChanges(src, table, p.sql, p.params);
  await target.transaction(async (tx) => {
    await stageRows(tx, read.rows);
    await tx.exec(`INSERT INTO ${tx.dialect.ident(TARGET.orders)} (${ORDER_COLUMN_NAMES.join(', ')}) SELECT ${ORDER_COLUMN_NAMES.join(', ')} FROM ${tx.dialect.ident(TARGET.stage)}`);
    await options.checkpoint?.('data-written');
    await saveState(tx, pipeline, p.next, saved.runs + 1);
  });
  return { from: saved.watermark?.toISOString() ?? null, next: p.next?.toISOString() ?? null, rowsRead: read.rows.length, rowsScanned: read.scanned, ms: performance.now() - t0 };
};

/** DELETE the range and commit, then INSERT the new range and commit: between the two, R is empty for every reader. */
const backfillSplit: BackfillFn = async (src, target: SqlEngine, opts) => {
  const rows = await readRange(src, opts);
  const { ident } = target.dialect;
  await target.exec(`DELETE FROM ${ident(TARGET.orders)} WHERE ${inRange(target)}`, [opts.range.from, opts.range.to]);
  await opts.between?.('deleted');
  await target.transaction(async (tx) => {
    await stageRows(tx, rows);
    await tx.exec(`INSERT INTO ${ident(TARGET.orders)} (${ORDER_COLUMN_NAMES.join(', ')}) SELECT ${ORDER_COLUMN_NAMES.join(', ')} FROM ${ident(TARGET.stage)}`);
  });
  await opts.between?.('inserted');
  await opts.between?.('committed');
  return { rows: rows.length };
};

export { extractNaiveMax };
const withExtract = (extract: ExtractFn, exportName: string, module = here): IncrementalImpl => ({ extract, source: { module, exportName, kind: 'extract' }, backfill: backfillRange });

export const incrementalPitfalls: Pitfall<IncrementalImpl>[] = [
  {
    name: 'naive-max-updated-at',
    title: 'reads updated_at > (SELECT max(updated_at) FROM target)',
    description:
      'The incremental model of the seed answers. updated_at is the writing transaction\'s start, so a transaction that began before rows the target already holds ' +
      'and commits after the extraction carries a timestamp below the max: no later run reads it. A transaction that began in the same millisecond as the max is skipped by the `>`.',
    impl: withExtract(extractNaiveMax, 'extractNaiveMax'),
  },
  {
    name: 'wall-clock-watermark',
    title: 'saves the extractor\'s clock at start as the next watermark',
    description:
      '"Everything before I started has been read" is false while a transaction that began earlier is still open: it commits rows stamped before the saved watermark, and the next run starts after them.',
    impl: withExtract(extractWallClock, 'extractWallClock'),
  },
  {
    name: 'state-before-data',
    title: 'advances the state in its own transaction, before the data commits',
    description:
      'Saving the watermark first (or in a separate step at all) opens a window where the state says "read" and the data is not there. A crash in that window — here a real SIGKILL after the MERGE — loses the rows for good: the rerun starts from the new watermark.',
    impl: withExtract(extractStateFirst, 'extractStateFirst'),
  },
  {
    name: 'append-not-merge',
    title: 'INSERTs the extracted rows instead of MERGE',
    description:
      'Any row read twice lands twice: the inclusive boundary that keeps ties re-reads rows, and a retry replays a whole window. The target has no enforced key, as in most warehouses, so nothing fails: the duplicates just sum into every report.',
    impl: withExtract(extractAppend, 'extractAppend'),
  },
  {
    name: 'backfill-delete-then-insert',
    title: 'backfills with DELETE of the range in one transaction and INSERT in another',
    description:
      'Between the two commits the range is empty for every reader (a dashboard, a downstream job); a failure of the INSERT leaves it empty for good.',
    impl: { ...withExtract(extractWith(planExtraction), 'extractIncremental', new URL('../../pipelines/incremental/extract.ts', import.meta.url).href), backfill: backfillSplit },
  },
];
