/**
 * Backfill: reprocess one order_date range R from the source (a bug fix in the transform) and
 * replace exactly R in the target, in one target transaction — a reader sees the old R or the new
 * R, never R half deleted, and rows outside R are not touched. It does not move the watermark:
 * later runs keep merging changes, R included — deploy the fixed transform to the runs first.
 *
 * The range key (order_date) must never change on a row: a row moved out of R by an update would
 * be left behind by the DELETE and never written by the INSERT.
 */
import type { SqlEngine } from '../engines/types.ts';
import { TARGET, sourceSelectList, type TransformVersion } from './schema.ts';
import { FenceError, appendStage, checkFence, readState, saveState, stageRows, type SourceRow } from './extract.ts';

export type BackfillPoint = 'read' | 'deleted' | 'inserted' | 'committed';

export interface BackfillOptions {
  range: { from: string; to: string };
  transform: TransformVersion;
  table?: string;
  /** The state row whose version fences the backfill against scheduled runs. */
  pipeline?: string;
  /** Tries before giving up when runs keep landing in between (each retry re-reads the source). */
  attempts?: number;
  /** Called after each step (the lab runs a scheduled run at `read`, and reads the target at the others). */
  between?: (point: BackfillPoint) => Promise<void>;
}

export type BackfillFn = (src: SqlEngine, target: SqlEngine, opts: BackfillOptions) => Promise<{ rows: number; attempts: number }>;

export const inRange = (db: SqlEngine, col = 'order_date') => `${col} BETWEEN ${db.dialect.dateParam('$1')} AND ${db.dialect.dateParam('$2')}`;

/** The source rows of R, transformed as the target should hold them. */
export async function readRange(src: SqlEngine, opts: BackfillOptions): Promise<SourceRow[]> {
  return src.query<SourceRow>(`SELECT ${sourceSelectList(opts.transform)} FROM ${src.dialect.ident(opts.table ?? 'orders')} WHERE ${inRange(src)}`, [opts.range.from, opts.range.to]);
}

/** DELETE R and INSERT the staged R (inside the caller's transaction). */
export async function replaceRange(tx: SqlEngine, opts: BackfillOptions): Promise<void> {
  await tx.exec(`DELETE FROM ${tx.dialect.ident(TARGET.orders)} WHERE ${inRange(tx)}`, [opts.range.from, opts.range.to]);
  await opts.between?.('deleted');
  await appendStage(tx);
  await opts.between?.('inserted');
}

/**
 * The reference backfill, fenced: read the state's version, read R from the source, then in one
 * target transaction check the version is unchanged, replace R, and bump the version. A scheduled
 * run that landed between the source read and the commit may have loaded rows of R newer than the
 * ones read here: the fence sees it, nothing is committed, and the backfill reads R again. (The
 * run's own commit is fenced the same way, so a backfill that lands first makes the run retry.)
 */
export const backfillRange: BackfillFn = async (src, target, opts) => {
  const pipeline = opts.pipeline ?? 'orders';
  for (let attempt = 1; ; attempt++) {
    const fence = (await readState(target, pipeline)).version;
    const rows = await readRange(src, opts);
    await opts.between?.('read');
    try {
      await target.transaction(async (tx) => {
        const state = await checkFence(tx, pipeline, fence);
        await stageRows(tx, rows);
        await replaceRange(tx, opts);
        await saveState(tx, pipeline, state.watermark, fence + 1);
      });
    } catch (err) {
      if (err instanceof FenceError && attempt < (opts.attempts ?? 3)) continue;
      throw err;
    }
    await opts.between?.('committed');
    return { rows: rows.length, attempts: attempt };
  }
};
