import type { SqlEngine } from '../../pipelines/engines/types.ts';

/**
 * Fill `target` (key, version, value) with exactly one row per key of `source`: the row with
 * the highest version. `target` exists and is empty.
 */
export async function latestPerKey(db: SqlEngine, source: string, target: string): Promise<void> {
  // TODO: one INSERT … SELECT
  void db, source, target;
  throw new Error('TODO: implement latestPerKey');
}
