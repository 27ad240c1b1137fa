/**
 * The tables of the quality gate:
 *   bronze_orders                every batch as it landed (batch_date + the order columns)
 *   customers                    the reference table foreign keys are checked against
 *   silver_orders                the promoted rows: what people read
 *   quarantine_orders            rows that failed a warning expectation, with their reasons
 *   quality_batch_results        one record per gated batch: promoted or blocked, row counts, and the
 *                                monitor's history (null rates, distinct keys, sum / mean of amount)
 *   quality_expectation_results  per batch and expectation: passed, failed rows, NULL rows
 *   quality_alerts               what the volume monitor flagged
 */
import type { SqlEngine } from '../engines/types.ts';
import { ORDER_COLUMNS } from './suite.ts';

export interface QualityTables {
  bronze: string;
  customers: string;
  silver: string;
  quarantine: string;
  results: string;
  expectationResults: string;
  alerts: string;
}

export const QUALITY_TABLES: QualityTables = {
  bronze: 'bronze_orders',
  customers: 'customers',
  silver: 'silver_orders',
  quarantine: 'quarantine_orders',
  results: 'quality_batch_results',
  expectationResults: 'quality_expectation_results',
  alerts: 'quality_alerts',
};

/** batch_date + the order columns, in the order bronze, silver and quarantine store them. */
export const BATCH_COLUMNS = ['batch_date', ...ORDER_COLUMNS] as const;

export async function createQualityTables(db: SqlEngine, t: QualityTables = QUALITY_TABLES): Promise<void> {
  const { ident: q, types } = db.dialect;
  const orderCols = `batch_date ${types.date} NOT NULL, order_id ${types.bigint}, customer_id ${types.bigint}, channel ${types.text}, external_ref ${types.text},
    status ${types.text}, email ${types.text}, amount ${types.decimal(14, 2)}, order_ts ${types.timestamp}`;
  await db.exec(`CREATE TABLE IF NOT EXISTS ${q(t.customers)} (customer_id ${types.bigint} PRIMARY KEY, email ${types.text} NOT NULL)`);
  // Bronze takes whatever arrives: no key, no NOT NULL beyond the load date — checking is the gate's job.
  await db.exec(`CREATE TABLE IF NOT EXISTS ${q(t.bronze)} (${orderCols})`);
  await db.exec(`CREATE TABLE IF NOT EXISTS ${q(t.silver)} (${orderCols})`);
  await db.exec(`CREATE TABLE IF NOT EXISTS ${q(t.quarantine)} (${orderCols}, reasons ${types.text} NOT NULL)`);
  await db.exec(
    `CREATE TABLE IF NOT EXISTS ${q(t.results)} (batch_date ${types.date} PRIMARY KEY, status ${types.text} NOT NULL, bronze_rows ${types.bigint} NOT NULL,
       promoted_rows ${types.bigint} NOT NULL, quarantined_rows ${types.bigint} NOT NULL, blocked_by ${types.text} NOT NULL,
       null_rate_customer_id ${types.double}, null_rate_email ${types.double}, null_rate_amount ${types.double},
       distinct_order_ids ${types.bigint} NOT NULL, amount_sum ${types.double}, amount_avg ${types.double})`,
  );
  await db.exec(
    `CREATE TABLE IF NOT EXISTS ${q(t.expectationResults)} (batch_date ${types.date} NOT NULL, expectation ${types.text} NOT NULL, severity ${types.text} NOT NULL,
       passed ${types.bool} NOT NULL, failed_rows ${types.bigint}, null_rows ${types.bigint}, observed ${types.text} NOT NULL, PRIMARY KEY (batch_date, expectation))`,
  );
  await db.exec(
    `CREATE TABLE IF NOT EXISTS ${q(t.alerts)} (batch_date ${types.date} NOT NULL, monitor ${types.text} NOT NULL, observed ${types.double} NOT NULL,
       expected ${types.double}, score ${types.double}, PRIMARY KEY (batch_date, monitor))`,
  );
}

export async function clearQualityTables(db: SqlEngine, t: QualityTables = QUALITY_TABLES): Promise<void> {
  for (const name of Object.values(t)) await db.exec(`DELETE FROM ${db.dialect.ident(name)}`);
}
