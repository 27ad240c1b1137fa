/** The compaction pipeline: streaming ingest → small files → monitored, verified, atomic compaction → vacuum. */
export * from './table.ts';
export * from './ingest.ts';
export * from './compact.ts';
export * from './faults.ts';
export * from './monitor.ts';
export * from './reader.ts';
export * from './crash.ts';
export * from './delta.ts';
