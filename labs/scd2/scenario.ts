/**
 * Runs an SCD2 implementation over a sequence of daily snapshots on a real engine and collects
 * the evidence the claims judge: the dimension itself, what the as-of query returns for every
 * loaded date, what a fact join returns, and what each same-day re-run changed. Used by the lab's
 * steps and, with fast-check's generated sequences, by tests/scd2.test.ts.
 */
import type { SqlEngine } from '../../pipelines/engines/types.ts';
import {
  applyScd2Snapshot,
  asOfSql,
  createDimension,
  createSnapshotTable,
  dimensionFingerprint,
  factsAsOfSql,
  validOn,
  type Scd2Tables,
  type ValidOn,
} from '../../pipelines/scd2/index.ts';
import { probeAllOrNothing } from '../../pipelines/engines/faults.ts';
import { classifyChanges, generateBenchmarkSnapshots, type DailySnapshot, type KeyChange, type OrderFact } from '../../fixtures/scd2.ts';

/** What a candidate implementation provides: the apply (the exercise), and the validity predicate. */
export interface Scd2Impl {
  /** Applies the full snapshot in `tables.stage`, taken on `snapshotDate`, to `tables.dim`. */
  applySnapshot(db: SqlEngine, tables: Scd2Tables, snapshotDate: string): Promise<void>;
  /** SQL predicate: version `alias` is valid on the date expression. */
  validOn: ValidOn;
}

export const referenceImpl: Scd2Impl = { applySnapshot: applyScd2Snapshot, validOn };

export interface DimRow {
  customer_sk: number;
  customer_id: number;
  segment: string | null;
  city: string | null;
  email: string | null;
  valid_from: string;
  valid_to: string;
  is_current: boolean;
  is_deleted: boolean;
}

export interface RerunResult {
  date: string;
  before: { rows: number; hash: string };
  after: { rows: number; hash: string };
}

export interface AsOfRow {
  snapshot_date: string;
  customer_id: number;
  customer_sk: number;
  segment: string | null;
  city: string | null;
}

export interface FactJoinRow {
  order_id: number;
  customer_id: number;
  order_date: string;
  amount: number;
  customer_sk: number | null;
  segment: string | null;
  city: string | null;
}

/** The second day's apply, with a failure injected after each of its statements in turn. */
export interface AtomicityProbe {
  date: string;
  /** Statement boundaries a failure was injected at. */
  failurePoints: number;
  /** The engine commits each statement alone (`Dialect.atomicity`, Delta Lake): no transaction can group them. */
  statementAtomic?: boolean;
  /** The first failure that left the dimension changed: after how many statements, and one key whose versions it changed. */
  violation?: { afterStatements: number; rowsBefore: number; rowsAfter: number; customerId: number; versionsBefore: DimRow[]; versionsAfter: DimRow[] };
}

export interface ScenarioEvidence {
  atomicity?: AtomicityProbe;
  snapshots: DailySnapshot[];
  orders: OrderFact[];
  changes: KeyChange[];
  /** The dimension after the last snapshot, every version. */
  dim: DimRow[];
  reruns: RerunResult[];
  /** The as-of query's rows for every loaded date. */
  asOf: AsOfRow[];
  /** Each order joined to the dimension as of its date (an order may join 0, 1 or more versions). */
  factJoin: FactJoinRow[];
}

export const SCENARIO_TABLES = { dim: 'dim_customer', stage: 'stg_customer', source: 'src_customer_snapshots', orders: 'fact_orders' } as const;

/** Creates the scenario's tables on an empty database. */
export async function createScenarioTables(db: SqlEngine): Promise<void> {
  const { types: t, ident } = db.dialect;
  await createDimension(db, SCENARIO_TABLES.dim);
  await createSnapshotTable(db, SCENARIO_TABLES.stage);
  await db.exec(`
    CREATE TABLE ${ident(SCENARIO_TABLES.source)} (
      snapshot_date ${t.date} NOT NULL, customer_id ${t.bigint} NOT NULL, segment ${t.text}, city ${t.text}, email ${t.text}
    )`);
  await db.exec(`
    CREATE TABLE ${ident(SCENARIO_TABLES.orders)} (
      order_id ${t.bigint} NOT NULL, customer_id ${t.bigint} NOT NULL, order_date ${t.date} NOT NULL, amount ${t.int} NOT NULL
    )`);
}

/** Empties the scenario's tables (cheaper than re-creating them between property-test runs). */
export async function clearScenarioTables(db: SqlEngine): Promise<void> {
  for (const name of Object.values(SCENARIO_TABLES)) await db.exec(`DELETE FROM ${db.dialect.ident(name)}`);
}

/** Replaces the stage's content with the snapshot of `date` (kept in the source table). */
async function stageSnapshot(db: SqlEngine, date: string): Promise<void> {
  const { ident, dateParam } = db.dialect;
  await db.exec(`DELETE FROM ${ident(SCENARIO_TABLES.stage)}`);
  await db.exec(
    `INSERT INTO ${ident(SCENARIO_TABLES.stage)} (customer_id, segment, city, email)
     SELECT customer_id, segment, city, email FROM ${ident(SCENARIO_TABLES.source)} WHERE snapshot_date = ${dateParam('$1')}`,
    [date],
  );
}

/**
 * Loads every snapshot in order with `impl`, re-running a snapshot on its own day when it says so,
 * then reads back the evidence. Expects the scenario tables to exist and be empty.
 */
export async function runScenario(db: SqlEngine, impl: Scd2Impl, snapshots: DailySnapshot[], orders: OrderFact[]): Promise<ScenarioEvidence> {
  const { ident } = db.dialect;
  const tables: Scd2Tables = { dim: SCENARIO_TABLES.dim, stage: SCENARIO_TABLES.stage };
  await db.insertRows(
    ident(SCENARIO_TABLES.source),
    ['snapshot_date', 'customer_id', 'segment', 'city', 'email'],
    snapshots.flatMap((s) => s.rows.map((r) => [s.date, r.customer_id, r.segment, r.city, r.email])),
  );
  await db.insertRows(
    ident(SCENARIO_TABLES.orders),
    ['order_id', 'customer_id', 'order_date', 'amount'],
    orders.map((o) => [o.order_id, o.customer_id, o.order_date, o.amount]),
  );

  const reruns: RerunResult[] = [];
  let atomicity: AtomicityProbe | undefined;
  for (const [day, snap] of snapshots.entries()) {
    await stageSnapshot(db, snap.date);
    if (day === Math.min(1, snapshots.length - 1)) {
      // The second day (the first with changes of every kind): fail it after each statement in turn; every
      // failure must leave the dimension as it was (then the last attempt applies it for real).
      const rows = async () => (await db.query<DimRow>(`SELECT * FROM ${ident(tables.dim)} ORDER BY customer_id, valid_from, customer_sk`)).map(numeric);
      const probe = await probeAllOrNothing(db, (x) => impl.applySnapshot(x, tables, snap.date), rows, (a, b) => JSON.stringify(a) === JSON.stringify(b));
      atomicity = { date: snap.date, failurePoints: probe.failurePoints, ...(db.dialect.atomicity === 'statement' ? { statementAtomic: true } : {}) };
      if (probe.violation) {
        const { afterStatements, before, after } = probe.violation;
        const versions = (list: DimRow[], id: number) => list.filter((r) => r.customer_id === id);
        const ids = [...new Set([...before, ...after].map((r) => r.customer_id))].sort((x, y) => x - y);
        const customerId = ids.find((id) => JSON.stringify(versions(before, id)) !== JSON.stringify(versions(after, id)))!;
        atomicity.violation = { afterStatements, rowsBefore: before.length, rowsAfter: after.length, customerId, versionsBefore: versions(before, customerId), versionsAfter: versions(after, customerId) };
        await impl.applySnapshot(db, tables, snap.date); // what a rerun after the failure would do
      }
    } else await impl.applySnapshot(db, tables, snap.date);
    if (snap.rerun) {
      const before = await dimensionFingerprint(db, tables.dim);
      await impl.applySnapshot(db, tables, snap.date);
      reruns.push({ date: snap.date, before, after: await dimensionFingerprint(db, tables.dim) });
    }
  }

  const dim = (await db.query<DimRow>(`SELECT * FROM ${ident(tables.dim)} ORDER BY customer_id, valid_from, customer_sk`)).map(numeric);
  const asOf: AsOfRow[] = [];
  for (const snap of snapshots) {
    const rows = await db.query<Omit<AsOfRow, 'snapshot_date'>>(asOfSql(db, tables.dim, impl.validOn), [snap.date]);
    for (const r of rows) asOf.push({ snapshot_date: snap.date, customer_id: Number(r.customer_id), customer_sk: Number(r.customer_sk), segment: r.segment, city: r.city });
  }
  const factJoin = (await db.query<FactJoinRow>(factsAsOfSql(db, SCENARIO_TABLES.orders, tables.dim, impl.validOn))).map((r) => ({
    ...r,
    order_id: Number(r.order_id),
    customer_id: Number(r.customer_id),
    amount: Number(r.amount),
    customer_sk: r.customer_sk === null ? null : Number(r.customer_sk),
  }));
  return { snapshots, orders, changes: classifyChanges(snapshots), dim, reruns, asOf, factJoin, atomicity };
}

/** One snapshot apply against its floor, CREATE TABLE AS of the same snapshot (fastest of three rounds each). */
export interface BenchEvidence {
  snapshotRows: number;
  applyMs: number;
  loadMs: number;
  dimRows: number;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/**
 * Measures one snapshot apply against the floor. Three rounds, each on a fresh copy of the loaded
 * dimension, floor and apply interleaved so both see the same machine; the fastest of each is
 * reported (noise from other work only adds time).
 */
export async function benchmarkApply(db: SqlEngine, impl: Scd2Impl, seed: number, rows: number): Promise<BenchEvidence> {
  const { ident } = db.dialect;
  for (const t of ['bench_base', 'bench_next']) await createSnapshotTable(db, t);
  await createDimension(db, 'bench_dim');
  await generateBenchmarkSnapshots(db, { base: 'bench_base', next: 'bench_next' }, seed, rows);
  await impl.applySnapshot(db, { dim: 'bench_dim', stage: 'bench_base' }, '2024-01-01');
  const floors: number[] = [];
  const applies: number[] = [];
  let dimRows = 0;
  for (let round = 0; round < 3; round++) {
    const copy = `bench_dim_${round}`;
    await createDimension(db, copy);
    await db.exec(`INSERT INTO ${ident(copy)} SELECT * FROM bench_dim`);
    floors.push(await timed(() => db.exec('CREATE TABLE bench_floor AS SELECT * FROM bench_next')));
    await db.exec('DROP TABLE bench_floor');
    applies.push(await timed(() => impl.applySnapshot(db, { dim: copy, stage: 'bench_next' }, '2024-01-02')));
    const [n] = await db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${ident(copy)}`);
    dimRows = Number(n!.n);
    await db.exec(`DROP TABLE ${ident(copy)}`);
  }
  const [snap] = await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM bench_next');
  return { snapshotRows: Number(snap!.n), applyMs: Math.min(...applies), loadMs: Math.min(...floors), dimRows };
}

function numeric(r: DimRow): DimRow {
  return { ...r, customer_sk: Number(r.customer_sk), customer_id: Number(r.customer_id) };
}
