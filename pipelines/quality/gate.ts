/**
 * The gate of one batch, bronze → silver:
 *
 *   1. evaluate  one catalog query (schema expectations) and ONE aggregate scan of the batch
 *                (every row- and batch-level expectation, the quarantine count, the monitor's metrics);
 *   2. decide    blocked when any critical expectation failed;
 *   3. write     in ONE transaction: replace the batch's silver rows (the clean ones, when not
 *                blocked), its quarantine rows (with reasons), its result record (with the
 *                monitor's metrics) and per-expectation results. A crash anywhere leaves the
 *                batch as it was; a rerun replaces its rows with the same rows: it changes nothing.
 */
import type { SqlEngine } from '../engines/types.ts';
import { catalogName } from '../engines/catalog.ts';
import { compileExpectation, evaluationSql, routeRowsSql, MONITORED_NULLS, type ExpectationCompiler } from './compile.ts';
import { BATCH_COLUMNS, QUALITY_TABLES, type QualityTables } from './schema.ts';
import type { Expectation, ExpectationKind, Severity } from './suite.ts';

export interface ExpectationResult {
  name: string;
  kind: ExpectationKind;
  severity: Severity;
  level: 'schema' | 'row' | 'batch';
  passed: boolean;
  /** Row level: rows failing it (NULLs included when the policy fails them). */
  failedRows: number | null;
  /** Row level: rows whose checked value is NULL — their own outcome, counted whatever the policy. */
  nullRows: number | null;
  observed: string;
}

export interface BatchMetrics {
  rows: number;
  nullRate: Record<(typeof MONITORED_NULLS)[number], number | null>;
  distinctOrderIds: number;
  amountSum: number | null;
  amountAvg: number | null;
}

export interface Evaluation {
  batchDate: string;
  rows: number;
  /** Rows failing at least one warning row-level expectation. */
  quarantineRows: number;
  results: ExpectationResult[];
  metrics: BatchMetrics;
  /** Critical expectations that failed: the batch is blocked when not empty. */
  blockedBy: string[];
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** Runs the suite on the batch of `batchDate` in bronze: one catalog query, one scan. */
export async function evaluateBatch(
  db: SqlEngine,
  suite: readonly Expectation[],
  batchDate: string,
  opts: { tables?: QualityTables; compile?: ExpectationCompiler } = {},
): Promise<Evaluation> {
  const t = opts.tables ?? QUALITY_TABLES;
  const catalog = await db.query<{ column_name: string; data_type: string }>(
    `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1`,
    [catalogName(db, t.bronze)],
  );
  const columns = new Map(catalog.map((r) => [r.column_name.toLowerCase(), r.data_type]));
  const q = evaluationSql(db.dialect, t.bronze, suite, batchDate, opts.compile ?? compileExpectation);
  const [row] = await db.query<Record<string, unknown>>(q.sql, q.params);
  const v = row ?? {};
  const rows = num(v.n_rows);
  const results: ExpectationResult[] = q.compiled.expectations.map(({ e, c }, i) => {
    const base = { name: e.name, kind: e.kind, severity: e.severity };
    if (c.level === 'schema') return { ...base, level: 'schema', failedRows: null, nullRows: null, ...c.judge(columns) };
    if (c.level === 'row') {
      const failed = num(v[`e${i}_failed`]);
      const nulls = num(v[`e${i}_nulls`]);
      return { ...base, level: 'row', passed: failed === 0, failedRows: failed, nullRows: nulls, observed: `${failed} of ${rows} rows fail (${nulls} NULL)` };
    }
    const values: Record<string, number | null> = {};
    for (const k of Object.keys(c.aggregates)) values[k] = numOrNull(v[`e${i}_${k}`]);
    return { ...base, level: 'batch', failedRows: null, nullRows: null, ...c.judge(values) };
  });
  const rate = (present: unknown) => (rows === 0 ? null : (rows - num(present)) / rows);
  return {
    batchDate,
    rows,
    quarantineRows: num(v.n_quarantine),
    results,
    metrics: {
      rows,
      nullRate: { customer_id: rate(v.m_present_customer_id), email: rate(v.m_present_email), amount: rate(v.m_present_amount) },
      distinctOrderIds: num(v.m_distinct_order_ids),
      amountSum: numOrNull(v.m_amount_sum),
      amountAvg: numOrNull(v.m_amount_avg),
    },
    blockedBy: results.filter((r) => r.severity === 'critical' && !r.passed).map((r) => r.name),
  };
}

export interface GateStatement {
  sql: string;
  params: unknown[];
  /** What the statement writes: the promotion (silver), the quarantine, or the batch's record. */
  part: 'promote' | 'quarantine' | 'record';
}

/** The statements that write a batch's outcome, in order; each first removes what an earlier run of the batch wrote. */
export function gateStatements(
  db: SqlEngine,
  suite: readonly Expectation[],
  ev: Evaluation,
  opts: { tables?: QualityTables; compile?: ExpectationCompiler } = {},
): GateStatement[] {
  const t = opts.tables ?? QUALITY_TABLES;
  const q = db.dialect.ident;
  const d = ev.batchDate;
  const blocked = ev.blockedBy.length > 0;
  const clear = (table: string, part: GateStatement['part']): GateStatement => ({ sql: `DELETE FROM ${q(table)} WHERE batch_date = CAST($1 AS DATE)`, params: [d], part });
  const route = (target: string, how: 'clean' | 'quarantine'): GateStatement => {
    const s = routeRowsSql(db.dialect, { bronze: t.bronze, target }, BATCH_COLUMNS, suite, how, d, opts.compile ?? compileExpectation);
    return { sql: s.sql, params: s.params, part: how === 'clean' ? 'promote' : 'quarantine' };
  };
  const out: GateStatement[] = [clear(t.silver, 'promote')];
  if (!blocked) out.push(route(t.silver, 'clean'));
  out.push(clear(t.quarantine, 'quarantine'));
  if (!blocked) out.push(route(t.quarantine, 'quarantine'));
  for (const table of [t.results, t.expectationResults]) out.push(clear(table, 'record'));
  const m = ev.metrics;
  out.push({
    sql: `INSERT INTO ${q(t.results)} (batch_date, status, bronze_rows, promoted_rows, quarantined_rows, blocked_by,
            null_rate_customer_id, null_rate_email, null_rate_amount, distinct_order_ids, amount_sum, amount_avg)
          VALUES (CAST($1 AS DATE), $2, $3, $4, $5, $6, CAST($7 AS DOUBLE PRECISION), CAST($8 AS DOUBLE PRECISION), CAST($9 AS DOUBLE PRECISION), $10,
                  CAST($11 AS DOUBLE PRECISION), CAST($12 AS DOUBLE PRECISION))`,
    params: [
      d, blocked ? 'blocked' : 'promoted', ev.rows, blocked ? 0 : ev.rows - ev.quarantineRows, blocked ? 0 : ev.quarantineRows, ev.blockedBy.join(','),
      m.nullRate.customer_id, m.nullRate.email, m.nullRate.amount, m.distinctOrderIds, m.amountSum, m.amountAvg,
    ],
    part: 'record',
  });
  const params: unknown[] = [d];
  const values = ev.results.map((r) => {
    const at = params.length;
    params.push(r.name, r.severity, r.passed, r.failedRows, r.nullRows, r.observed);
    return `(CAST($1 AS DATE), $${at + 1}, $${at + 2}, $${at + 3}, CAST($${at + 4} AS BIGINT), CAST($${at + 5} AS BIGINT), $${at + 6})`;
  });
  out.push({ sql: `INSERT INTO ${q(t.expectationResults)} (batch_date, expectation, severity, passed, failed_rows, null_rows, observed) VALUES ${values.join(', ')}`, params, part: 'record' });
  return out;
}

/** How a gate writes its statements. */
export type GateWriter = (db: SqlEngine, statements: readonly GateStatement[]) => Promise<void>;

/** The reference: promotion, quarantine and the record commit together or not at all. */
export const writeInOneTransaction: GateWriter = (db, statements) =>
  db.transaction(async (tx) => {
    for (const s of statements) await tx.exec(s.sql, s.params);
  });

/** Evaluates the batch of `batchDate` and writes its outcome. */
export async function gateBatch(
  db: SqlEngine,
  suite: readonly Expectation[],
  batchDate: string,
  opts: { tables?: QualityTables; compile?: ExpectationCompiler; write?: GateWriter } = {},
): Promise<Evaluation> {
  const ev = await evaluateBatch(db, suite, batchDate, opts);
  await (opts.write ?? writeInOneTransaction)(db, gateStatements(db, suite, ev, opts));
  return ev;
}
