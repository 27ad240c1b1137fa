/**
 * The reference batch apply, made slow: each batch waits `?ms=` (from this module's URL, default
 * 3000) before applying — a Snowflake MERGE, a busy machine. tests/cdc.test.ts loads it by URL in
 * an apply process.
 */
import { applyBatch as reference, type ApplyBatchFn } from '../../pipelines/cdc/apply.ts';

const delayMs = Number(new URL(import.meta.url).searchParams.get('ms') ?? 3000);

export const applyBatch: ApplyBatchFn = async (db, input) => {
  await new Promise((r) => setTimeout(r, delayMs));
  return reference(db, input);
};
