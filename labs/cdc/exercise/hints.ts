/** The cdc exercise: how a learner's module becomes an apply, the hints revealed one at a time, a nudge per claim. */
import type { Exercise } from '../../contract.ts';
import type { ApplyImpl } from '../../../pipelines/cdc/index.ts';

export const cdcExercise: Exercise<ApplyImpl> = {
  stub: 'labs/cdc/exercise/stub.ts',
  solution: 'pipelines/cdc/apply.ts',
  load: (module) => {
    const url = module.MODULE_URL;
    if (typeof url !== 'string') throw new Error('the exercise module must keep `export const MODULE_URL = import.meta.url` (the apply process imports it)');
    if (typeof module.applyBatch !== 'function') throw new Error('the exercise module must export `applyBatch`');
    return { applyModule: url, applyExport: 'applyBatch', commitOffsets: 'after-target-commit' };
  },
  hints: [
    'One transaction per batch: read the watermark, MERGE, write the new watermark — all inside `db.transaction`, so a crash leaves either everything or nothing. Create the stage (DDL) before it: Snowflake commits on DDL.',
    'Skip what is already applied: `isBeyondWatermark(event, watermark)` — a replayed or re-sent event is at or below the watermark.',
    'Several changes of one key in one batch: keep only the latest, by position (`_commit_lsn DESC, _lsn DESC`), never by `_ts_ms` — one transaction shares one ts_ms.',
    'The MERGE needs three branches: matched + op d → DELETE; matched → UPDATE; not matched + op not d → INSERT. An update for a key the target never saw must insert.',
    '`createStage` makes the temp table (before the transaction), `stageChanges` loads the batch into it; `mergeLatestSql(db, table, stage)` writes the reference MERGE, if you want to compare with yours.',
  ],
  nudges: {
    convergence: 'Compare the counterexample row with its changes in the batch: was the latest change applied, and did an update of an unseen key insert it?',
    'redelivery-harmless': 'A replay must be a no-op: filter events at or below the watermark, and advance the watermark in the same transaction as the MERGE.',
    'crash-safety': 'If the process dies right after your target commit, the same batch comes again: is it recognised by the watermark?',
    'ordering-by-lsn': 'ts_ms ties inside a transaction: order the latest change per key by (_commit_lsn, _lsn).',
    'deletes-propagate': 'A delete is a MERGE branch (WHEN MATCHED AND op = d THEN DELETE), not a row to insert.',
    'lag-visible': 'Lag only reaches zero when every batch commits its offsets — does your apply finish every batch?',
    'schema-change': 'Use input.table.columns (every column seen in the batch), not a fixed column list.',
  },
};
