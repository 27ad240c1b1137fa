/** SCD Type 2 customer dimension: schema, the snapshot apply, and how to query it as of a date. */
export { OPEN_END, DIM_COLUMNS, SNAPSHOT_COLUMNS, createDimension, createSnapshotTable, createChangeSetTable, type Scd2Tables } from './schema.ts';
export { applyScd2Snapshot, applyScd2SnapshotInSteps, validOn } from './apply.ts';
export { asOfSql, factsAsOfSql, dimensionFingerprint, type ValidOn } from './queries.ts';
