/**
 * The reconciliation lab's pipeline, step by step: each function runs one level of the
 * reconciliation on real engines and returns its evidence (no printing). The source — PostgreSQL,
 * NUMERIC and TIMESTAMPTZ in key order — is a shared fixture: loaded once per engine set and
 * (seed, rows), read-only; each run gets a DuckDB target of its own and injects its differences there.
 */
import type { SharedFixture } from '../contract.ts';
import type { Engines, PgEngine } from '../../pipelines/engines/index.ts';
import { partitionDiff, scoreDiffs, tableFingerprint, type DiffOutcome, type Fingerprint, type PartitionResult, type Reconciler, type Score, type TableSide } from '../../pipelines/reconciliation/index.ts';
import { createSourceOrders, createTargetOrders, ORDERS_SPEC as spec, rowsForScale, targetAsParquet, type TruthEntry } from '../../fixtures/reconciliation.ts';
import type { LevelsEvidence } from './bench.ts';

export interface Sides {
  source: TableSide;
  target: TableSide;
}

export interface ReconciliationState {
  rows: number;
  source?: TableSide;
  target?: TableSide;
  /** One target row whose DOUBLE amount carries float noise (shown beside its NUMERIC source). */
  floatNoise?: { id: number; amount: number };
  /** The reconciler on equal data (claim 2). */
  equal?: DiffOutcome;
  equalFingerprints?: { source: Fingerprint; target: Fingerprint };
  equalPartitionsNamed?: number;
  /** One changed value per column → did the table fingerprint change? (claim 4) */
  perturbations?: { change: string; changed: boolean }[];
  truth?: TruthEntry[];
  found?: DiffOutcome;
  score?: Score;
  partitions?: PartitionResult;
  levels?: LevelsEvidence['levels'];
  fullPull?: LevelsEvidence['fullPull'];
  parquet?: { score: Score; outcome: DiffOutcome };
  timings: { count_ms?: number; bisect_ms?: number; bisect_runs?: number; fullpull_ms?: number; partitions_ms?: number };
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

/**
 * The source orders of one (seed, rows). The connection is made read-only once loaded: an
 * implementation under judgement cannot change what the next one is judged on.
 */
export const ordersSource: SharedFixture<PgEngine> = {
  id: 'recon-orders-source',
  key: ({ seed, scale }) => `${seed}-${rowsForScale(scale)}`,
  async make({ seed, scale, engines }) {
    const rows = rowsForScale(scale);
    // Labelled by size: a full run makes its own and its pitfalls' at once, and names must differ.
    const pg = await engines.pg(undefined, `recon_${rows}`);
    // A session zone far from UTC: the canonical hash must not care how TIMESTAMPTZ prints.
    await pg.exec(`SET TimeZone = 'America/Sao_Paulo'`);
    // Postgres cannot estimate how many segments floor(id / width) makes, assumes one per row
    // and plans a sort; with room to hash it aggregates the ~1 000 real segments directly.
    await pg.exec(`SET work_mem = '256MB'`);
    // The row hash is CPU-bound (a few µs per row on Postgres): let the hash pass use parallel
    // workers. Postgres estimates one segment per row (it cannot count floor(id / width) groups),
    // so gathering the workers' partial sums looks as dear as gathering every row; a smaller
    // tuple cost and no setup cost let it run the 1M-row pass on 3 processes (~2.7 → ~1.5 s).
    // Parallel index scans stay off: a full-pull page (a key-range index scan returning every row)
    // ran 220–240 ms serial and 270–410 ms when its 100k rows came through a Gather.
    await pg.exec(`SET parallel_setup_cost = 0`);
    await pg.exec(`SET parallel_tuple_cost = 0.01`);
    await pg.exec(`SET min_parallel_table_scan_size = '1MB'`);
    await pg.exec(`SET min_parallel_index_scan_size = '8GB'`);
    await createSourceOrders(pg, 'orders', rows, seed);
    await pg.exec(`SET default_transaction_read_only = on`);
    return pg;
  },
};

/** Step 1: the shared source and this run's target (DOUBLE, TIMESTAMP, padded text, load order), same rows. */
export async function loadSides(source: Promise<PgEngine>, engines: Engines, rows: number, seed: number): Promise<Sides & { floatNoise?: { id: number; amount: number } }> {
  const [pg, duck] = await Promise.all([source, engines.duckdb().then(async (duck) => (await createTargetOrders(duck, 'orders', rows, seed), duck))]);
  const [noisy] = await duck.query<{ id: number; amount: number }>(`SELECT id, amount FROM orders WHERE amount <> round(amount, 2) ORDER BY id LIMIT 1`);
  return { source: { label: 'source', db: pg, from: 'orders' }, target: { label: 'target', db: duck, from: 'orders' }, floatNoise: noisy };
}

/** Step 2: equal data in two engines — what the reconciler, the fingerprints and the per-day level say. */
export async function equalData(impl: Reconciler, { source, target }: Sides) {
  const [outcome, fs, ft, parts] = await Promise.all([impl.diff(source, target, spec), tableFingerprint(source, spec), tableFingerprint(target, spec), partitionDiff(source, target, spec)]);
  return { equal: outcome, equalFingerprints: { source: fs, target: ft }, equalPartitionsNamed: parts.namedDays.length };
}

/** Step 3: one value per column changed (and NULL → ''), fingerprinted, rolled back: did the fingerprint move? */
export async function fingerprintSensitivity(target: TableSide, base: string): Promise<{ change: string; changed: boolean }[]> {
  const { db } = target;
  const [victim] = await db.query<{ id: number }>(`SELECT min(id) AS id FROM orders WHERE note IS NULL AND customer IS NOT NULL`);
  const key = Number(victim!.id);
  // Expressions are fixed SQL over the row itself; the key is a bind.
  const changes: { change: string; column: string; expr: string }[] = [
    { change: 'customer + "x"', column: 'customer', expr: `customer || 'x'` },
    { change: 'status upper-cased', column: 'status', expr: `upper(status)` },
    { change: 'amount + 0.01', column: 'amount', expr: `amount + 0.01` },
    { change: 'qty + 1', column: 'qty', expr: `qty + 1` },
    { change: 'note NULL → \'\'', column: 'note', expr: `''` },
    { change: 'created_at + 1 µs', column: 'created_at', expr: `created_at + INTERVAL '1 microsecond'` },
    { change: 'day + 1', column: 'day', expr: `day + 1` },
  ];
  const perturbations: { change: string; changed: boolean }[] = [];
  for (const c of changes) {
    await db.exec('BEGIN TRANSACTION');
    try {
      await db.exec(`UPDATE orders SET ${c.column} = ${c.expr} WHERE id = $1`, [key]);
      const fp = await tableFingerprint(target, spec);
      perturbations.push({ change: `key ${key}: ${c.change}`, changed: fp.sum !== base });
    } finally {
      await db.exec('ROLLBACK');
    }
  }
  return perturbations;
}

/** Step 5: the reconciler against the injected truth. */
export async function reconcile(impl: Reconciler, { source, target }: Sides, truth: readonly TruthEntry[]) {
  const { value, ms } = await timed(() => impl.diff(source, target, spec));
  return { found: value, score: scoreDiffs(truth, value.diffs), ms };
}

/** Step 6: per-day aggregates computed in each database. */
export const partitionLevel = ({ source, target }: Sides) => timed(() => partitionDiff(source, target, spec));

/** Step 8: the same reconciliation with the target as Parquet files read through DuckDB. */
export async function parquetTarget(impl: Reconciler, { source, target }: Sides, truth: readonly TruthEntry[], dir: string) {
  await targetAsParquet(target.db, 'orders', dir, 'orders_parquet');
  const outcome = await impl.diff(source, { label: 'target (parquet)', db: target.db, from: 'orders_parquet' }, spec);
  return { outcome, score: scoreDiffs(truth, outcome.diffs) };
}
