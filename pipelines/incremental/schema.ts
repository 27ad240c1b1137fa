/**
 * The tables of the incremental pipeline: the PostgreSQL source `orders` (its `updated_at` set by
 * a trigger with `now()`, the transaction's start), and on the target the loaded `orders`, the
 * stage an extraction lands in, and the state table holding each pipeline's watermark.
 */
import type { CanonicalKind, SqlEngine } from '../engines/types.ts';
import { canonicalRowHash, fingerprintSql } from '../engines/sql-common.ts';

export const TARGET = { orders: 'orders', stage: 'stg_orders', state: 'extract_state' } as const;

/**
 * The transform from a source row to a target row. `v1` has the bug a backfill fixes (revenue
 * ignores the discount); `v2` is the fix.
 */
export type TransformVersion = 'v1' | 'v2';
export const REVENUE_SQL: Record<TransformVersion, string> = {
  v1: 'amount',
  v2: 'amount - discount',
};

/** The target row's columns, in order, with their canonical kinds (for row hashes on both engines). */
export const ORDER_COLUMNS: readonly { name: string; kind: CanonicalKind }[] = [
  { name: 'id', kind: 'int' },
  { name: 'customer_id', kind: 'int' },
  { name: 'order_date', kind: 'date' },
  { name: 'amount', kind: 'decimal' },
  { name: 'revenue', kind: 'decimal' },
  { name: 'status', kind: 'text' },
  { name: 'updated_at', kind: 'timestamp' },
  { name: 'deleted', kind: 'bool' },
];
export const ORDER_COLUMN_NAMES = ORDER_COLUMNS.map((c) => c.name);

/**
 * The source table. `updated_at` is TIMESTAMPTZ(3), millisecond precision as many applications
 * keep it, so transactions that begin in the same millisecond share a timestamp. The trigger
 * stamps every inserted or updated row with `now()` — in PostgreSQL the start of the transaction,
 * not the moment of the write, and not the commit: a transaction that commits late carries an
 * early timestamp. The index on `updated_at` is what makes an incremental read cheap.
 */
export async function createSourceTable(src: SqlEngine, table = 'orders'): Promise<void> {
  const t = src.dialect.ident(table);
  await src.exec(`
    CREATE TABLE ${t} (
      id BIGINT PRIMARY KEY,
      customer_id INTEGER NOT NULL,
      order_date DATE NOT NULL,
      amount NUMERIC(12,2) NOT NULL,
      discount NUMERIC(12,2) NOT NULL DEFAULT 0,
      status TEXT NOT NULL,
      updated_at TIMESTAMPTZ(3) NOT NULL DEFAULT date_trunc('milliseconds', now()),
      deleted BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX ${src.dialect.ident(`${table}_updated_at`)} ON ${t} (updated_at);
    CREATE OR REPLACE FUNCTION stamp_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN NEW.updated_at := date_trunc('milliseconds', now()); RETURN NEW; END $$;
    CREATE TRIGGER ${src.dialect.ident(`${table}_stamp`)} BEFORE INSERT OR UPDATE ON ${t}
      FOR EACH ROW EXECUTE FUNCTION stamp_updated_at();`);
}

/**
 * The target's tables. `orders` has no primary key, as in most warehouses (Snowflake, BigQuery
 * and Redshift do not enforce one): a loader that appends where it should merge doubles rows
 * silently instead of failing. The state table holds one row per pipeline: its watermark, and a version every write bumps (the fence).
 */
export async function createTargetTables(db: SqlEngine): Promise<void> {
  const { types: t, ident } = db.dialect;
  const cols = `id ${t.bigint} NOT NULL, customer_id ${t.int}, order_date ${t.date}, amount ${t.decimal(12, 2)},
    revenue ${t.decimal(14, 2)}, status ${t.text}, updated_at ${t.timestamp}, deleted ${t.bool}`;
  await db.exec(`CREATE TABLE ${ident(TARGET.orders)} (${cols})`);
  await db.exec(`CREATE TABLE ${ident(TARGET.stage)} (${cols})`);
  await db.exec(`CREATE TABLE ${ident(TARGET.state)} (pipeline ${t.text} NOT NULL, watermark ${t.timestamp}, version ${t.int} NOT NULL)`);
}

/** The source's rows as the target should hold them (transform `version`): the select list of every extraction. */
export function sourceSelectList(version: TransformVersion): string {
  return `id, customer_id, order_date, amount, CAST(${REVENUE_SQL[version]} AS NUMERIC(14,2)) AS revenue, status, updated_at, deleted`;
}

const hashColumns = ORDER_COLUMNS.map((c) => ({ expr: c.name, kind: c.kind }));

/** Rows and the order-independent content checksum of `from` (a table or a parenthesised subquery with an alias). */
export async function fingerprint(db: SqlEngine, from: string, params: readonly unknown[] = []): Promise<{ rows: number; checksum: string }> {
  const [r] = await db.query<{ rows: unknown; checksum: unknown }>(fingerprintSql(db.dialect, from, hashColumns), params);
  return { rows: Number(r?.rows ?? 0), checksum: String(r?.checksum ?? '0') };
}

/** Each row's key and canonical hash (same value on every engine for the same content). */
export async function rowHashes(db: SqlEngine, from: string, params: readonly unknown[] = []): Promise<{ id: number; h: string }[]> {
  const rows = await db.query<{ id: unknown; h: unknown }>(`SELECT id, ${canonicalRowHash(db.dialect, hashColumns)} AS h FROM ${from}`, params);
  return rows.map((r) => ({ id: Number(r.id), h: String(r.h) }));
}

/** The source as the target should hold it, for `fingerprint`/`rowHashes` on the source connection. */
export const sourceAs = (version: TransformVersion, table = 'orders', where = 'TRUE') =>
  `(SELECT ${sourceSelectList(version)} FROM ${`"${table}"`} WHERE ${where}) AS src`;
