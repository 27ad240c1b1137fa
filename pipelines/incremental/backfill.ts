/**
 * Backfill: reprocess one order_date range R from the source (a bug fix in the transform) and
 * replace exactly R in the target, in one target transaction — a reader sees the old R or the new
 * R, never R half deleted, and rows outside R are not touched. It reads the source as of now and
 * does not move the incremental watermark: later runs keep merging changes, R included, with the
 * fixed transform.
 *
 * The range key (order_date) must never change on a row: a row moved out of R by an update would
 * be left behind by the DELETE and never written by the INSERT.
 */
import type { SqlEngine } from '../engines/types.ts';
import { TARGET, sourceSelectList, type TransformVersion } from './schema.ts';
import { appendStage, stageRows, type SourceRow } from './extract.ts';

export type BackfillPoint = 'deleted' | 'inserted' | 'committed';

export interface BackfillOptions {
  range: { from: string; to: string };
  transform: TransformVersion;
  table?: string;
  /** Called after each step (the lab's concurrent reader reads the target there). */
  between?: (point: BackfillPoint) => Promise<void>;
}

export type BackfillFn = (src: SqlEngine, target: SqlEngine, opts: BackfillOptions) => Promise<{ rows: number }>;

export const inRange = (db: SqlEngine, col = 'order_date') => `${col} BETWEEN ${db.dialect.dateParam('$1')} AND ${db.dialect.dateParam('$2')}`;

/** The source rows of R, transformed as the target should hold them. */
export async function readRange(src: SqlEngine, opts: BackfillOptions): Promise<SourceRow[]> {
  return src.query<SourceRow>(`SELECT ${sourceSelectList(opts.transform)} FROM ${src.dialect.ident(opts.table ?? 'orders')} WHERE ${inRange(src)}`, [opts.range.from, opts.range.to]);
}

/** The reference backfill: stage R, then DELETE R and INSERT the new R in one transaction. */
export const backfillRange: BackfillFn = async (src, target, opts) => {
  const rows = await readRange(src, opts);
  const { ident } = target.dialect;
  await target.transaction(async (tx) => {
    await stageRows(tx, rows);
    await tx.exec(`DELETE FROM ${ident(TARGET.orders)} WHERE ${inRange(tx)}`, [opts.range.from, opts.range.to]);
    await opts.between?.('deleted');
    await appendStage(tx);
    await opts.between?.('inserted');
  });
  await opts.between?.('committed');
  return { rows: rows.length };
};
