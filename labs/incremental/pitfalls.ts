/**
 * The incremental loads interview answers commonly give, each the reference with one piece wrong.
 * The lab runs each through the same claim checks; tests/incremental.test.ts asserts which claim
 * rejects which. Each extractor is exported so the crash test's child process can load it.
 */
import type { Pitfall } from '../contract.ts';
import type { SqlEngine } from '../../pipelines/engines/types.ts';
import {
  appendStage,
  TARGET,
  backfillRange,
  extractNaiveMax,
  extractWith,
  inRange,
  mergeStage,
  extractRun,
  readRange,
  replaceRange,
  saveState,
  sourceSelectList,
  stageRows,
  type BackfillFn,
  type ExtractFn,
  type PlanExtraction,
} from '../../pipelines/incremental/index.ts';
import { planExtraction } from '../../pipelines/incremental/extract.ts';
import { referenceImpl, type IncrementalImpl } from './scenario.ts';

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
export const extractStateFirst: ExtractFn = (src, target, options) =>
  extractRun(src, target, options, planExtraction, async (db, rows, saved, next, o) => {
    await db.transaction((tx) => saveState(tx, o.pipeline, next, saved.version + 1));
    await db.transaction(async (tx) => {
      await stageRows(tx, rows);
      await mergeStage(tx);
      await o.checkpoint?.('data-written');
    });
  });

/** INSERT the extracted rows instead of MERGE: every row read again (the `>=` boundary, a retry) lands twice. */
export const extractAppend: ExtractFn = (src, target, options) =>
  extractRun(src, target, options, planExtraction, (db, rows, saved, next, o) =>
    db.transaction(async (tx) => {
      await stageRows(tx, rows);
      await appendStage(tx);
      await o.checkpoint?.('data-written');
      await saveState(tx, o.pipeline, next, saved.version + 1);
    }),
  );

/** DELETE the range and commit, then INSERT the new range and commit: between the two, R is empty for every reader. */
const backfillSplit: BackfillFn = async (src, target: SqlEngine, opts) => {
  const rows = await readRange(src, opts);
  await opts.between?.('read');
  await target.exec(`DELETE FROM ${target.dialect.ident(TARGET.orders)} WHERE ${inRange(target)}`, [opts.range.from, opts.range.to]);
  await opts.between?.('deleted');
  await target.transaction(async (tx) => {
    await stageRows(tx, rows);
    await appendStage(tx);
  });
  await opts.between?.('inserted');
  await opts.between?.('committed');
  return { rows: rows.length, attempts: 1 };
};

/**
 * One transaction, but no fence: a scheduled run that loads a newer version of a row in R after
 * the backfill read the source is overwritten by the backfill's older copy — and the watermark has
 * moved past it, so no later run repairs it.
 */
const backfillUnfenced: BackfillFn = async (src, target, opts) => {
  const rows = await readRange(src, opts);
  await opts.between?.('read');
  await target.transaction(async (tx) => {
    await stageRows(tx, rows);
    await replaceRange(tx, opts);
  });
  await opts.between?.('committed');
  return { rows: rows.length, attempts: 1 };
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
    impl: { ...referenceImpl, backfill: backfillSplit },
  },
  {
    name: 'backfill-unfenced',
    title: 'backfills in one transaction, but nothing stops a scheduled run from landing in between',
    description:
      'The backfill reads R, a scheduled run loads a newer version of a row in R, the backfill commits the copy it read before: the newer version is overwritten, ' +
      'and the watermark has passed it, so no later run brings it back. Fence both writers on the state (or hold one lock across read and commit).',
    impl: { ...referenceImpl, backfill: backfillUnfenced },
  },
];
