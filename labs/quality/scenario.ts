/**
 * Runs a quality-gate implementation over the seeded daily batches on a real engine and collects
 * the evidence the claims judge: per day, what the gate evaluated and decided, what the tables
 * hold afterwards (measured with independent queries), what the volume monitor flagged, what a
 * rerun changed; and a crash drill: one batch gated with a failure injected after each statement
 * in turn. Used by the lab's steps and by tests/quality.test.ts.
 */
import type { SqlEngine } from '../../pipelines/engines/types.ts';
import { fingerprintSql } from '../../pipelines/engines/sql-common.ts';
import { failingAfter } from '../../pipelines/engines/faults.ts';
import type { CanonicalKind } from '../../pipelines/engines/types.ts';
import {
  compileExpectation,
  createQualityTables,
  gateBatch,
  NAIVE_RULES,
  ORDERS_SUITE,
  QUALITY_TABLES as T,
  scanSeries,
  VOLUME_ANOMALY,
  weekdayRobustDetector,
  writeInOneTransaction,
  type AnomalyVerdict,
  type Evaluation,
  type Expectation,
  type ExpectationCompiler,
  type GateWriter,
  type Severity,
  type VolumeDetector,
} from '../../pipelines/quality/index.ts';
import { BRONZE_COLUMNS, WARMUP_DAYS, type DayBatch, type IncidentKind, type QualityFixture } from '../../fixtures/quality.ts';

/** What a candidate implementation provides: the expectation compiler (the exercise), the gate's writer, the volume detector. */
export interface QualityImpl {
  compile: ExpectationCompiler;
  write: GateWriter;
  detector: VolumeDetector;
}

export const referenceImpl: QualityImpl = { compile: compileExpectation, write: writeInOneTransaction, detector: weekdayRobustDetector() };

export interface TableCounts {
  bronze: number;
  silver: number;
  /** Silver rows with a NULL in a required column (amount, email, customer_id). */
  silverRequiredNulls: number;
  quarantine: number;
  /** Quarantined rows whose reason list is empty. */
  quarantineWithoutReason: number;
  record: { status: string; promoted: number; quarantined: number } | null;
}

export interface DayOutcome {
  date: string;
  day: number;
  weekday: number;
  incident: IncidentKind | null;
  truth: DayBatch['truth'];
  evaluation: Pick<Evaluation, 'rows' | 'quarantineRows' | 'blockedBy' | 'results'>;
  /** The implementation's volume verdict (null: no batch arrived, nothing to judge). */
  anomaly: AnomalyVerdict | null;
  /** The two common rules on the same series. */
  naive: Record<string, AnomalyVerdict> | null;
  tables: TableCounts;
  /** Rows of this batch for which `NOT (amount BETWEEN 0 AND 1000000)` is NULL: what that predicate lets through. */
  notBetweenLetsThrough: number;
}

export interface RerunEvidence {
  date: string;
  table: string;
  before: string;
  after: string;
}

export interface CrashPoint {
  /** The failure came after this many statements of the gate (evaluation queries included). */
  afterStatements: number;
  silver: number;
  quarantine: number;
  record: boolean;
}

export interface CrashDrill {
  date: string;
  bronze: number;
  /** Failure points tried before the gate got through. */
  points: CrashPoint[];
  final: { silver: number; quarantine: number; record: boolean };
}

export interface QuarantinedRow {
  batch_date: string;
  order_id: number | null;
  customer_id: number | null;
  email: string | null;
  amount: number | null;
  reasons: string;
}

export interface ScenarioEvidence {
  severities: Record<string, Severity>;
  warmupDays: number;
  days: DayOutcome[];
  reruns: { batches: number; changed: RerunEvidence[] };
  crash: CrashDrill;
  /** The quarantine table after the run (a few dozen rows), for the `--out` file. */
  quarantined?: QuarantinedRow[];
}

/** Day whose gate the crash drill runs with a failure injected (it has promoted and quarantined rows). */
export const CRASH_DRILL_INCIDENT: IncidentKind = 'malformed-emails';

export async function loadReference(db: SqlEngine, fx: QualityFixture): Promise<void> {
  await createQualityTables(db);
  await db.insertRows(db.dialect.ident(T.customers), ['customer_id', 'email'], fx.customers.map((c) => [c.customer_id, c.email]));
}

const cols = (kinds: Record<string, CanonicalKind>) => Object.entries(kinds).map(([expr, kind]) => ({ expr, kind }));
const ORDER_KINDS: { expr: string; kind: CanonicalKind }[] = [
  { expr: 'order_id', kind: 'int' },
  { expr: 'customer_id', kind: 'int' },
  { expr: 'channel', kind: 'text' },
  { expr: 'external_ref', kind: 'text' },
  { expr: 'status', kind: 'text' },
  { expr: 'email', kind: 'text' },
  { expr: 'amount', kind: 'decimal' },
  { expr: 'order_ts', kind: 'timestamp' },
];
const FINGERPRINTED: { table: string; columns: { expr: string; kind: CanonicalKind }[] }[] = [
  { table: T.silver, columns: ORDER_KINDS },
  { table: T.quarantine, columns: [...ORDER_KINDS, { expr: 'reasons', kind: 'text' }] },
  {
    table: T.results,
    columns: cols({ status: 'text', blocked_by: 'text', bronze_rows: 'int', promoted_rows: 'int', quarantined_rows: 'int', null_rate_amount: 'double', distinct_order_ids: 'int', amount_sum: 'double' }),
  },
  {
    table: T.expectationResults,
    columns: [
      { expr: 'expectation', kind: 'text' },
      { expr: 'severity', kind: 'text' },
      { expr: 'passed', kind: 'bool' },
      { expr: 'failed_rows', kind: 'int' },
      { expr: 'null_rows', kind: 'int' },
      { expr: 'observed', kind: 'text' },
    ],
  },
];

/** Per table and batch date: "rows:checksum" of what the gate wrote. */
async function gateFingerprints(db: SqlEngine): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of FINGERPRINTED) {
    const rows = await db.query<{ batch_date: string; rows: unknown; checksum: unknown }>(fingerprintSql(db.dialect, db.dialect.ident(f.table), f.columns, 'batch_date'));
    for (const r of rows) out.set(`${f.table}|${r.batch_date}`, `${Number(r.rows)}:${String(r.checksum)}`);
  }
  return out;
}

/** Counts per batch date, read back from the tables (not from what the gate says it did). */
async function tableCounts(db: SqlEngine): Promise<Map<string, TableCounts>> {
  const q = db.dialect.ident;
  const byDate = new Map<string, TableCounts>();
  const get = (d: string) => {
    let c = byDate.get(d);
    if (!c) byDate.set(d, (c = { bronze: 0, silver: 0, silverRequiredNulls: 0, quarantine: 0, quarantineWithoutReason: 0, record: null }));
    return c;
  };
  for (const r of await db.query<{ d: string; n: unknown }>(`SELECT batch_date AS d, count(*) AS n FROM ${q(T.bronze)} GROUP BY batch_date`)) get(r.d).bronze = Number(r.n);
  for (const r of await db.query<{ d: string; n: unknown; nulls: unknown }>(
    `SELECT batch_date AS d, count(*) AS n, sum(CASE WHEN amount IS NULL OR email IS NULL OR customer_id IS NULL THEN 1 ELSE 0 END) AS nulls FROM ${q(T.silver)} GROUP BY batch_date`,
  )) {
    get(r.d).silver = Number(r.n);
    get(r.d).silverRequiredNulls = Number(r.nulls);
  }
  for (const r of await db.query<{ d: string; n: unknown; empty: unknown }>(`SELECT batch_date AS d, count(*) AS n, sum(CASE WHEN reasons = '' THEN 1 ELSE 0 END) AS empty FROM ${q(T.quarantine)} GROUP BY batch_date`)) {
    get(r.d).quarantine = Number(r.n);
    get(r.d).quarantineWithoutReason = Number(r.empty);
  }
  for (const r of await db.query<{ d: string; status: string; p: unknown; qr: unknown }>(`SELECT batch_date AS d, status, promoted_rows AS p, quarantined_rows AS qr FROM ${q(T.results)}`)) {
    get(r.d).record = { status: r.status, promoted: Number(r.p), quarantined: Number(r.qr) };
  }
  return byDate;
}

/** The common NULL-blind predicate, counted on the engine: rows where `NOT (amount BETWEEN 0 AND 1000000)` is NULL. */
async function notBetweenCounts(db: SqlEngine): Promise<Map<string, number>> {
  const rows = await db.query<{ d: string; n: unknown }>(
    `SELECT batch_date AS d, sum(CASE WHEN (NOT (amount BETWEEN $1 AND $2)) IS NULL THEN 1 ELSE 0 END) AS n FROM ${db.dialect.ident(T.bronze)} GROUP BY batch_date`,
    [0, 1_000_000],
  );
  return new Map(rows.map((r) => [r.d, Number(r.n)]));
}

/** What a reader sees of one batch: its rows in silver and in quarantine, and whether it has a result record. */
export async function batchState(db: SqlEngine, date: string): Promise<{ silver: number; quarantine: number; record: boolean }> {
  const q = db.dialect.ident;
  const [r] = await db.query<{ s: unknown; qn: unknown; rec: unknown }>(
    `SELECT (SELECT count(*) FROM ${q(T.silver)} WHERE batch_date = CAST($1 AS DATE)) AS s,
            (SELECT count(*) FROM ${q(T.quarantine)} WHERE batch_date = CAST($1 AS DATE)) AS qn,
            (SELECT count(*) FROM ${q(T.results)} WHERE batch_date = CAST($1 AS DATE)) AS rec`,
    [date],
  );
  return { silver: Number(r!.s), quarantine: Number(r!.qn), record: Number(r!.rec) > 0 };
}

/**
 * The gate of `date` with a failure after 0, 1, 2, … statements until it gets through: after each
 * failure, the batch's state as a reader would see it.
 */
async function crashDrill(db: SqlEngine, impl: QualityImpl, suite: readonly Expectation[], date: string, bronze: number): Promise<CrashDrill> {
  const points: CrashPoint[] = [];
  // From the first write on: a failure inside the evaluation (two read-only queries) writes nothing by construction.
  for (let n = 2; n < 100; n++) {
    const ok = await gateBatch(failingAfter(db, n), suite, date, { compile: impl.compile, write: impl.write }).then(
      () => true,
      () => false,
    );
    if (ok) break;
    points.push({ afterStatements: n, ...(await batchState(db, date)) });
  }
  return { date, bronze, points, final: await batchState(db, date) };
}

/** Loads each day's batch into bronze and gates it, in date order; then measures, and reruns a dozen batches. */
export async function runScenario(db: SqlEngine, impl: QualityImpl, fx: QualityFixture, suite: readonly Expectation[] = ORDERS_SUITE): Promise<ScenarioEvidence> {
  const evaluations = new Map<string, Evaluation>();
  let crash: CrashDrill | undefined;
  for (const day of fx.days) {
    if (day.rows.length) await db.insertRows(db.dialect.ident(T.bronze), [...BRONZE_COLUMNS], day.rows);
    if (day.incident === CRASH_DRILL_INCIDENT && !crash) {
      crash = await crashDrill(db, impl, suite, day.date, day.rows.length);
    }
    evaluations.set(day.date, await gateBatch(db, suite, day.date, { compile: impl.compile, write: impl.write }));
  }
  // Volume monitor: each arrived batch against the arrived batches before it.
  const arrived = fx.days.filter((d) => (evaluations.get(d.date)?.rows ?? 0) > 0);
  const series = arrived.map((d) => ({ date: d.date, weekday: d.weekday, value: evaluations.get(d.date)!.rows }));
  const verdicts = new Map(scanSeries(series, impl.detector).map((v, i) => [series[i]!.date, v]));
  const naive = Object.entries(NAIVE_RULES).map(([name, det]) => ({ name, verdicts: new Map(scanSeries(series, det).map((v, i) => [series[i]!.date, v])) }));
  const alertRows = series.filter((p) => verdicts.get(p.date)?.flagged).map((p) => [p.date, VOLUME_ANOMALY, p.value, verdicts.get(p.date)!.expected, verdicts.get(p.date)!.score]);
  await db.transaction(async (tx) => {
    await tx.exec(`DELETE FROM ${tx.dialect.ident(T.alerts)}`);
    if (alertRows.length) await tx.insertRows(tx.dialect.ident(T.alerts), ['batch_date', 'monitor', 'observed', 'expected', 'score'], alertRows);
  });

  const counts = await tableCounts(db);
  const quarantined = (
    await db.query<QuarantinedRow>(`SELECT batch_date, order_id, customer_id, email, amount, reasons FROM ${db.dialect.ident(T.quarantine)} ORDER BY batch_date, order_id`)
  ).map((r) => ({ ...r, order_id: r.order_id === null ? null : Number(r.order_id), customer_id: r.customer_id === null ? null : Number(r.customer_id), amount: r.amount === null ? null : Number(r.amount) }));
  const letThrough = await notBetweenCounts(db);
  // Rerun a batch of every outcome (each incident day: promoted with quarantine, blocked, missing; and two clean days): nothing may change.
  const rerunDays = fx.days.filter((d, i) => d.incident || i === 0 || i === fx.days.length - 1);
  const before = await gateFingerprints(db);
  for (const day of rerunDays) await gateBatch(db, suite, day.date, { compile: impl.compile, write: impl.write });
  const after = await gateFingerprints(db);
  const changed: RerunEvidence[] = [];
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    const [table, date] = key.split('|') as [string, string];
    if (before.get(key) !== after.get(key)) changed.push({ date, table, before: before.get(key) ?? '0 rows', after: after.get(key) ?? '0 rows' });
  }
  changed.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));

  const empty: TableCounts = { bronze: 0, silver: 0, silverRequiredNulls: 0, quarantine: 0, quarantineWithoutReason: 0, record: null };
  return {
    severities: Object.fromEntries(suite.map((e) => [e.name, e.severity])),
    warmupDays: WARMUP_DAYS,
    days: fx.days.map((d) => {
      const ev = evaluations.get(d.date)!;
      const v = verdicts.get(d.date) ?? null;
      return {
        date: d.date,
        day: d.day,
        weekday: d.weekday,
        incident: d.incident,
        truth: d.truth,
        evaluation: { rows: ev.rows, quarantineRows: ev.quarantineRows, blockedBy: ev.blockedBy, results: ev.results },
        anomaly: v,
        naive: v ? Object.fromEntries(naive.map((n) => [n.name, n.verdicts.get(d.date)!])) : null,
        tables: counts.get(d.date) ?? empty,
        notBetweenLetsThrough: letThrough.get(d.date) ?? 0,
      };
    }),
    reruns: { batches: rerunDays.length, changed },
    crash: crash ?? { date: '', bronze: 0, points: [], final: { silver: 0, quarantine: 0, record: false } },
    quarantined,
  };
}

/** What a day reported: failing expectations, and the volume monitor when it flagged. */
export function reportedOn(d: DayOutcome): string[] {
  const names = d.evaluation.results.filter((r) => !r.passed).map((r) => r.name);
  if (d.anomaly?.flagged) names.push(VOLUME_ANOMALY);
  return names;
}
