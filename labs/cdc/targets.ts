/** Reading a cdc target back: the NULL-safe compare with the source, a fingerprint, the final tables. */
import { createHash } from 'node:crypto';
import { KEY, SCHEMA_CHANGE, type CdcTable } from '../../fixtures/cdc.ts';
import type { PgEngine } from '../../pipelines/engines/postgres/driver.ts';
import type { SqlEngine } from '../../pipelines/engines/types.ts';
import { storedColumns } from '../../pipelines/engines/catalog.ts';
import { WATERMARK_TABLE, compareTable, openPortableTarget, type PortableTarget, type TableDiff } from '../../pipelines/cdc/index.ts';
import type { CdcState } from './evidence.ts';

export const TABLES: CdcTable[] = ['customers', 'orders'];

export async function fingerprint(db: SqlEngine): Promise<string> {
  const h = createHash('sha256');
  for (const t of TABLES) {
    const rows = await db.query(`SELECT * FROM ${db.dialect.ident(t)}`);
    const lines = rows.map((r) => JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))).sort();
    h.update(`${t}\n${lines.join('\n')}\n`);
  }
  return h.digest('hex').slice(0, 16);
}

export async function withTarget<T>(target: PortableTarget, fn: (db: SqlEngine) => Promise<T>): Promise<T> {
  const db = await openPortableTarget(target);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

export async function compareAll(source: PgEngine, db: SqlEngine): Promise<TableDiff[]> {
  const out: TableDiff[] = [];
  for (const t of TABLES) out.push(await compareTable(source, db, t, [KEY[t]]));
  return out;
}

/** The main target: compare, rows for --out, watermarks, fingerprint, and the schema change's figures. */
export async function inspectMain(source: PgEngine, target: PortableTarget): Promise<{ main: NonNullable<CdcState['main']>; column: Pick<NonNullable<CdcState['schema']>, 'targetHasColumn' | 'sourceNulls' | 'sourceValues' | 'targetNulls'> }> {
  return withTarget(target, async (db) => {
    const diff = await compareAll(source, db);
    const rows: Record<string, Record<string, unknown>[]> = {};
    for (const t of TABLES) rows[t] = await db.query(`SELECT * FROM ${db.dialect.ident(t)} ORDER BY ${db.dialect.ident(KEY[t])}`);
    const watermarks = await db.query(`SELECT * FROM ${WATERMARK_TABLE} ORDER BY topic, kafka_partition`);
    const main = { diff, rows, watermarks, fingerprint: await fingerprint(db) };
    const col = SCHEMA_CHANGE.column;
    const [src] = await source.query<{ nulls: number; vals: number }>(`SELECT COUNT(*) FILTER (WHERE ${col} IS NULL) AS nulls, COUNT(${col}) AS vals FROM customers`);
    const has = (await storedColumns(db, 'customers', [col])).has(col);
    const [tgt] = has ? await db.query<{ nulls: number }>(`SELECT COUNT(*) - COUNT(${col}) AS nulls FROM customers`) : [{ nulls: 0 }];
    return { main, column: { targetHasColumn: has, sourceNulls: Number(src!.nulls), sourceValues: Number(src!.vals), targetNulls: Number(tgt!.nulls) } };
  });
}
