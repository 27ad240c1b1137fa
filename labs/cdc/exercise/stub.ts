/**
 * Exercise: the CDC batch apply.
 *
 * A Kafka consumer hands you one micro-batch of change events of one table (one topic-partition),
 * in offset order. Make the target table equal the source, exactly once in effect:
 *   - events at or below this partition's applied watermark were applied before (a replay, or the
 *     capture re-sent them after a crash): skip them;
 *   - several changes of one key: only the latest counts — by position (commit LSN, then LSN);
 *   - one MERGE: delete / update / insert (an update for a key the target never saw inserts it);
 *   - advance the watermark in the SAME transaction as the MERGE.
 * The consumer commits the Kafka offsets after your function returns.
 *
 * Check it: `npm run check -- cdc`. Helpers you may use are imported below.
 */
import type { ApplyBatchFn, ApplyBatchInput, ApplyBatchResult } from '../../../pipelines/cdc/apply.ts';
import type { SqlEngine } from '../../../pipelines/engines/types.ts';
// Helpers: readWatermark, writeWatermark, isBeyondWatermark, createStage, stageChanges, mergeLatestSql.
// import { createStage, isBeyondWatermark, readWatermark, stageChanges, writeWatermark } from '../../../pipelines/cdc/apply.ts';

export const applyBatch: ApplyBatchFn = async (db: SqlEngine, input: ApplyBatchInput): Promise<ApplyBatchResult> => {
  // TODO 1: create the staging table BEFORE the transaction (`createStage(db, input.table)`: DDL, which
  //         Snowflake commits on the spot), then open one: `return db.transaction(async (tx) => { … })`.
  // TODO 2: read the watermark of (input.topic, input.partition); keep the events beyond it.
  // TODO 3: stage the fresh events (stageChanges(tx, stage, …) fills the temp table: row + _op, _commit_lsn, _lsn, _ts_ms).
  // TODO 4: MERGE the latest change per key into input.table.name (delete / update / insert).
  // TODO 5: write the new watermark (the largest position you applied); return the counts.
  void db;
  void input;
  throw new Error('cdc exercise: applyBatch is not implemented yet (see the TODOs in this file)');
};

/** Leave this line: the apply runs in its own process, which imports this file by its URL. */
export const MODULE_URL = import.meta.url;
