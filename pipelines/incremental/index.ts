export * from './schema.ts';
export * from './extract.ts';
export * from './backfill.ts';
export * from './source.ts';
export * from './crash.ts';
