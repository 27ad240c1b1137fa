/**
 * How the dimension is read: the as-of (point-in-time) query and the fact join. Both take the
 * validity predicate as a parameter, so a lab can run them with a wrong one and watch them fail.
 */
import type { SqlEngine } from '../engines/types.ts';
import { fingerprintSql } from '../engines/sql-common.ts';

/** `validOn(alias, dateExpr)`: SQL predicate, version `alias` is valid on that date. */
export type ValidOn = (alias: string, dateExpr: string) => string;

/** The dimension as it was on `date`: one row per key that existed then (Type 2 values). */
export function asOfSql(db: SqlEngine, dim: string, validOn: ValidOn): string {
  return `
    SELECT v.customer_sk, v.customer_id, v.segment, v.city, v.email
    FROM ${db.dialect.ident(dim)} AS v
    WHERE ${validOn('v', db.dialect.dateParam('$1'))}
    ORDER BY v.customer_id`;
}

/** Each order with the customer version valid on the order's date (the usual fact → SCD2 join). */
export function factsAsOfSql(db: SqlEngine, facts: string, dim: string, validOn: ValidOn): string {
  const { ident } = db.dialect;
  return `
    SELECT f.order_id, f.customer_id, f.order_date, f.amount, v.customer_sk, v.segment, v.city
    FROM ${ident(facts)} AS f
    LEFT JOIN ${ident(dim)} AS v
      ON v.customer_id = f.customer_id AND ${validOn('v', 'f.order_date')}
    ORDER BY f.order_id, v.customer_sk`;
}

/** Order-independent fingerprint of every column of the dimension: equal content, equal hash. */
export async function dimensionFingerprint(db: SqlEngine, dim: string): Promise<{ rows: number; hash: string }> {
  const columns = [
    { expr: 'customer_sk', kind: 'int' },
    { expr: 'customer_id', kind: 'int' },
    { expr: 'segment', kind: 'text' },
    { expr: 'city', kind: 'text' },
    { expr: 'email', kind: 'text' },
    { expr: 'valid_from', kind: 'date' },
    { expr: 'valid_to', kind: 'date' },
    { expr: 'is_current', kind: 'bool' },
    { expr: 'is_deleted', kind: 'bool' },
  ] as const;
  const [r] = await db.query<{ rows: number; checksum: string }>(fingerprintSql(db.dialect, db.dialect.ident(dim), columns));
  return { rows: Number(r!.rows), hash: String(r!.checksum) };
}
