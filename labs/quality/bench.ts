/**
 * The one-scan measurement: the whole suite's evaluation of one large batch (one catalog query,
 * one aggregate scan) against the floor — one plain `count(*)` over the same batch with the
 * suite's row conditions as its filters — and, for contrast, the same expectations run one query each.
 * Five rounds, interleaved so all see the same machine; the fastest of each is kept (noise
 * from other work only adds time).
 */
import type { SqlEngine } from '../../pipelines/engines/types.ts';
import { createQualityTables, evaluateBatch, evaluationSql, isSchemaLevel, ORDERS_SUITE, qualityDialect, QUALITY_TABLES as T, type Expectation } from '../../pipelines/quality/index.ts';
import { benchmarkBatchSql } from '../../fixtures/quality.ts';

export interface BenchEvidence {
  rows: number;
  suiteMs: number;
  floorMs: number;
  perExpectationMs: number;
  /** Queries the suite's evaluation ran over the batch (row- and batch-level expectations together). */
  scanQueries: number;
  expectations: number;
}

export const BENCH_DATE = '2024-06-03';
/** Rounds of each measurement; the fastest is kept. */
const ROUNDS = 5;
export const BENCH_CUSTOMERS = 5000;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/**
 * The floor: one count(*) of the batch, filtered by the suite's own row conditions as plain
 * predicates (the same BETWEEN, regex, IN list and reference lookup): what reading the batch
 * once and testing each row costs, with nothing counted per expectation.
 */
function floorSql(db: SqlEngine): { sql: string; params: unknown[] } {
  const q = db.dialect.ident;
  return {
    sql: `SELECT count(*) AS n FROM ${q(T.bronze)} AS b
          WHERE b.batch_date = CAST($1 AS DATE) AND b.order_id IS NOT NULL AND b.amount BETWEEN $2 AND $3
            AND ${qualityDialect(db.name).regexMatch('b.email', 'CAST($4 AS VARCHAR)')}
            AND b.status IN ('placed', 'paid', 'shipped', 'cancelled')
            AND b.customer_id IN (SELECT customer_id FROM ${q(T.customers)})`,
    params: [BENCH_DATE, 0, 1_000_000, (ORDERS_SUITE.find((e) => e.kind === 'regex') as { pattern: string }).pattern],
  };
}

export async function benchmarkSuite(db: SqlEngine, rows: number, suite: readonly Expectation[] = ORDERS_SUITE): Promise<BenchEvidence> {
  await createQualityTables(db);
  const q = db.dialect.ident;
  await db.exec(`INSERT INTO ${q(T.customers)} (customer_id, email) SELECT g, 'c' || CAST(g AS VARCHAR(20)) || '@example.com' FROM generate_series(1, CAST($1 AS BIGINT)) AS t(g)`, [BENCH_CUSTOMERS]);
  await db.exec(benchmarkBatchSql(q(T.bronze), BENCH_CUSTOMERS), [BENCH_DATE, rows]);
  await db.exec(`ANALYZE ${q(T.bronze)}`).catch(() => undefined);
  const floor = floorSql(db);
  const checked = suite.filter((e) => !isSchemaLevel(e));
  const perExpectation = checked.map((e) => evaluationSql(db.dialect, T.bronze, [e], BENCH_DATE));
  // Counts the statements the suite sends: the evaluation must be one scan, whatever the suite's size.
  let scanQueries = 0;
  const counting: SqlEngine = {
    name: db.name,
    dialect: db.dialect,
    query: <R>(sql: string, params?: readonly unknown[]) => ((scanQueries += sql.includes(`FROM ${q(T.bronze)}`) ? 1 : 0), db.query<R>(sql, params)),
    exec: (sql, params) => db.exec(sql, params),
    transaction: (fn) => db.transaction(fn),
    insertRows: (table, columns, r) => db.insertRows(table, columns, r),
    close: () => db.close(),
  };
  const suiteMs: number[] = [];
  const floorMs: number[] = [];
  const perMs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    floorMs.push(await timed(() => db.query(floor.sql, floor.params)));
    scanQueries = 0;
    suiteMs.push(await timed(() => evaluateBatch(counting, suite, BENCH_DATE)));
    perMs.push(await timed(async () => {
      for (const p of perExpectation) await db.query(p.sql, p.params);
    }));
  }
  const [n] = await db.query<{ n: unknown }>(`SELECT count(*) AS n FROM ${q(T.bronze)}`);
  return { rows: Number(n!.n), suiteMs: Math.min(...suiteMs), floorMs: Math.min(...floorMs), perExpectationMs: Math.min(...perMs), scanQueries, expectations: checked.length };
}
