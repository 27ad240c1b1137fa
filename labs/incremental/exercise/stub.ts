/**
 * Exercise: write the extraction query of an incremental load, and its watermark — the part an
 * interviewer asks for. The lab runs your plan inside the reference extractor: it reads the saved
 * watermark, calls your `planExtraction`, runs your query on the source, MERGEs the rows into the
 * target and saves your `next` watermark in the same target transaction.
 *
 * The source table (opts.table, PostgreSQL) has
 *   id BIGINT PRIMARY KEY, customer_id INT, order_date DATE, amount NUMERIC(12,2),
 *   discount NUMERIC(12,2), status TEXT, deleted BOOLEAN (soft delete),
 *   updated_at TIMESTAMPTZ(3)  set by a trigger to date_trunc('milliseconds', now()),
 *                              now() being the START of the writing transaction; indexed.
 * Several writers run transactions of every length while you extract; some stay open across a run.
 *
 * Rules the checks hold you to (npm run check -- incremental):
 *   - every committed row reaches the target, including rows of a transaction that was open
 *     during an extraction and rows sharing the watermark's millisecond;
 *   - the query reads about as many rows as changed (it can use the index on updated_at);
 *   - your plan only reads: the run saves `next` with the data.
 * Select the target's columns with sourceSelectList(opts.transform); bind values as $1, $2, ….
 */
import type { SqlEngine } from '../../../pipelines/engines/types.ts';
import { sourceSelectList } from '../../../pipelines/incremental/schema.ts';
import type { ExtractionPlan } from '../../../pipelines/incremental/extract.ts';

/** Where this module lives (the crash test runs your plan in a child process). Keep it. */
export const moduleUrl = import.meta.url;

/**
 * `saved`: the watermark the previous run saved (null on the first run). Returns the extraction
 * query with its binds, and the watermark the next run will start from.
 */
export async function planExtraction(
  src: SqlEngine,
  saved: Date | null,
  opts: { table: string; transform: 'v1' | 'v2'; safetyMarginMs: number },
): Promise<ExtractionPlan> {
  const columns = sourceSelectList(opts.transform);
  // TODO 1: compute the next watermark FIRST, in its own statement: the earliest start of any
  //         transaction still open on this database (pg_stat_activity.xact_start), or your own
  //         statement_timestamp() if there is none; floored to the millisecond, minus the margin.
  // TODO 2: the query: every row changed since `saved` (think: > or >= ?), or every row when null.
  void src;
  throw new Error(`TODO: planExtraction(${opts.table}, saved ${saved?.toISOString() ?? 'none'}) is not written yet — select ${columns.slice(0, 20)}…`);
}
