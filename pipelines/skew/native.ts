/**
 * DuckDB runs the same join natively: the answer every strategy must reproduce, and the floor
 * our hand-built executor is measured against (`skew_native_join_ms`).
 */
import { DuckDBDataChunk, INTEGER, VARCHAR, type DuckDBType } from '@duckdb/node-api';
import type { DuckDbEngine } from '../engines/duckdb/driver.ts';
import { FP_MOD } from './answer.ts';
import { NULL_KEY } from './hash.ts';
import { SEGMENTS, type JoinType, type SkewTables } from './types.ts';

/** DuckDB's vector size: rows per appended chunk. */
const VECTOR = 2048;

/** Creates `payments` and `merchants` in DuckDB and bulk-loads them through the appender, a vector (2048 rows) at a time. */
export async function loadSkewTables(db: DuckDbEngine, tables: SkewTables): Promise<{ ms: number }> {
  const t0 = performance.now();
  await db.exec(`
    CREATE OR REPLACE TABLE payments (payment_id INTEGER NOT NULL, merchant_id INTEGER, amount_cents INTEGER NOT NULL);
    CREATE OR REPLACE TABLE merchants (merchant_id INTEGER NOT NULL, segment VARCHAR NOT NULL);`);
  const { id, key, amountCents } = tables.fact;
  await appendColumns(db, 'payments', [INTEGER, INTEGER, INTEGER], id.length, (s, e) => [
    Array.from(id.subarray(s, e)),
    Array.from(key.subarray(s, e), (k) => (k === NULL_KEY ? null : k)),
    Array.from(amountCents.subarray(s, e)),
  ]);
  await appendColumns(db, 'merchants', [INTEGER, VARCHAR], tables.dim.key.length, (s, e) => [
    Array.from(tables.dim.key.subarray(s, e)),
    Array.from(tables.dim.segment.subarray(s, e), (g) => SEGMENTS[g]!),
  ]);
  return { ms: performance.now() - t0 };
}

async function appendColumns(db: DuckDbEngine, table: string, types: DuckDBType[], rows: number, columns: (start: number, end: number) => (number | string | null)[][]): Promise<void> {
  const appender = await db.connection.createAppender(table);
  try {
    for (let s = 0; s < rows; s += VECTOR) {
      const e = Math.min(rows, s + VECTOR);
      const chunk = DuckDBDataChunk.create(types, e - s);
      columns(s, e).forEach((values, c) => chunk.setColumnValues(c, values));
      appender.appendDataChunk(chunk);
    }
    appender.flushSync();
  } finally {
    appender.closeSync();
  }
}

export interface NativeJoin {
  joinType: JoinType;
  /** DuckDB's own join, materialised into a table, on all its threads. */
  ms: number;
  rows: number;
  fp: number;
}

export async function nativeJoin(db: DuckDbEngine, joinType: JoinType): Promise<NativeJoin> {
  const join = joinType === 'left' ? 'LEFT JOIN' : 'JOIN';
  const t0 = performance.now();
  await db.exec(`
    CREATE OR REPLACE TABLE skew_native_join AS
    SELECT p.payment_id, p.merchant_id, p.amount_cents, m.merchant_id AS matched_merchant_id, m.segment
    FROM payments p ${join} merchants m ON m.merchant_id = p.merchant_id`);
  const ms = performance.now() - t0;
  const [fp] = await db.query<{ n: number; fp: number }>(
    `SELECT count(*) AS n,
            CAST(sum((CAST(payment_id AS BIGINT) * 1000003 + coalesce(matched_merchant_id, 0)) % $1) % $1 AS BIGINT) AS fp
     FROM skew_native_join`,
    [FP_MOD],
  );
  await db.exec('DROP TABLE skew_native_join');
  return { joinType, ms, rows: Number(fp!.n), fp: Number(fp!.fp ?? 0) };
}
