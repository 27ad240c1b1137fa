/**
 * The expectations of the orders batch, declared as data: what is checked, and how bad a failure
 * is. `compile.ts` turns each one into SQL that runs in the engine; nothing here is code.
 *
 * Severity:
 *   critical  the batch is blocked: nothing of it reaches silver (row-level: any failing row blocks)
 *   warning   row-level: the failing rows go to quarantine with their reasons, the rest is promoted;
 *             batch-level: recorded (an alert), the batch is promoted
 *
 * NULLs are an outcome of their own for value checks (between, in_set, regex, references):
 * `nulls: 'fail'` for a required column, 'pass' for an optional one — never the accident of
 * `NOT (x BETWEEN …)` being NULL.
 */
export type Severity = 'critical' | 'warning';
/** Type families, so one suite reads the catalog of every engine (DECIMAL(14,2) and numeric are both numeric). */
export type TypeFamily = 'integer' | 'numeric' | 'text' | 'date' | 'timestamp';
export type NullPolicy = 'fail' | 'pass';

interface Base {
  /** Stable name: the quarantine reason, the result record, the tests. */
  name: string;
  severity: Severity;
}

export type Expectation = Base &
  (
    | { kind: 'column_exists'; columns: readonly string[] }
    | { kind: 'column_type'; column: string; type: TypeFamily }
    | { kind: 'not_null'; column: string }
    | { kind: 'between'; column: string; min: number; max: number; nulls: NullPolicy }
    | { kind: 'in_set'; column: string; values: readonly string[]; nulls: NullPolicy }
    | { kind: 'regex'; column: string; pattern: string; nulls: NullPolicy }
    | { kind: 'references'; column: string; table: string; key: string; nulls: NullPolicy }
    | { kind: 'unique'; columns: readonly string[] }
    | { kind: 'completeness'; column: string; min: number }
    | { kind: 'row_count'; min: number; max?: number }
    /** The batch's latest `column` value is at least `hours` into the batch's day. */
    | { kind: 'freshness'; column: string; hours: number }
    /** A boolean aggregate over the batch; `{name}` placeholders are bound from `params`. */
    | { kind: 'custom_sql'; sql: string; params: Readonly<Record<string, number | string>> }
  );

export type ExpectationKind = Expectation['kind'];

/** Kinds decided per row (the one scan computes a flag per row for each). */
export const ROW_KINDS: ReadonlySet<ExpectationKind> = new Set(['not_null', 'between', 'in_set', 'regex', 'references']);
/** Kinds decided from the catalog, not the data. */
export const SCHEMA_KINDS: ReadonlySet<ExpectationKind> = new Set(['column_exists', 'column_type']);

export const ORDER_COLUMNS = ['order_id', 'customer_id', 'channel', 'external_ref', 'status', 'email', 'amount', 'order_ts'] as const;

export const ORDERS_SUITE: readonly Expectation[] = [
  // Schema: the columns downstream reads, with the types it reads them as.
  { name: 'schema_columns', severity: 'critical', kind: 'column_exists', columns: ORDER_COLUMNS },
  { name: 'amount_numeric', severity: 'critical', kind: 'column_type', column: 'amount', type: 'numeric' },
  { name: 'order_ts_timestamp', severity: 'critical', kind: 'column_type', column: 'order_ts', type: 'timestamp' },
  // Row level: a bad row is quarantined (or, for the key, blocks the batch).
  { name: 'order_id_not_null', severity: 'critical', kind: 'not_null', column: 'order_id' },
  { name: 'amount_between', severity: 'warning', kind: 'between', column: 'amount', min: 0, max: 1_000_000, nulls: 'fail' },
  { name: 'email_format', severity: 'warning', kind: 'regex', column: 'email', pattern: '^[^@ ]+@[^@ ]+\\.[a-z]{2,}$', nulls: 'fail' },
  { name: 'status_in_set', severity: 'warning', kind: 'in_set', column: 'status', values: ['placed', 'paid', 'shipped', 'cancelled'], nulls: 'fail' },
  { name: 'customer_exists', severity: 'warning', kind: 'references', column: 'customer_id', table: 'customers', key: 'customer_id', nulls: 'fail' },
  // Batch level: what no single row shows.
  { name: 'order_id_unique', severity: 'critical', kind: 'unique', columns: ['order_id'] },
  { name: 'channel_ref_unique', severity: 'critical', kind: 'unique', columns: ['channel', 'external_ref'] },
  { name: 'amount_complete', severity: 'critical', kind: 'completeness', column: 'amount', min: 0.98 },
  { name: 'batch_row_count', severity: 'critical', kind: 'row_count', min: 1 },
  { name: 'batch_fresh', severity: 'critical', kind: 'freshness', column: 'order_ts', hours: 18 },
  // Amounts are cents and no order is under 5.00: a batch mostly under 500 was sent in units upstream. (A share, not the
  // mean: one 10,000.00 typo in a small batch moves the mean as much as a unit change.)
  { name: 'amount_in_cents', severity: 'critical', kind: 'custom_sql', sql: 'avg(CASE WHEN amount < {floor} THEN 1.0 ELSE 0.0 END) <= {share}', params: { floor: 500, share: 0.5 } },
];

/** The monitor's report name: the volume anomaly check over the batch history (an alert; it never blocks). */
export const VOLUME_ANOMALY = 'volume_anomaly';
