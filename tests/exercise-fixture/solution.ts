import type { SqlEngine } from '../../pipelines/engines/types.ts';

/** The latest version of each key: rank versions per key, keep rank 1. */
export async function latestPerKey(db: SqlEngine, source: string, target: string): Promise<void> {
  await db.exec(`
    INSERT INTO ${target} (key, version, value)
    SELECT key, version, value
    FROM (SELECT key, version, value, ROW_NUMBER() OVER (PARTITION BY key ORDER BY version DESC) AS rn FROM ${source}) ranked
    WHERE rn = 1`);
}
