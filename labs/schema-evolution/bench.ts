/**
 * The loader's cost against its floor: the same Parquet files loaded by the contract loader (schema
 * read, check, one transaction per file with its log row) and by a plain
 * `INSERT INTO t SELECT * FROM read_parquet(file)` into a table of the right shape. Three rounds,
 * each on fresh tables, floor and loader interleaved; the fastest of each is kept.
 */
import { join } from 'node:path';
import type { LabContext } from '../contract.ts';
import { nameLiteral } from '../../pipelines/engines/sql-common.ts';
import { createLake, loadDropFile, type DropFile } from '../../pipelines/schema-evolution/loader.ts';
import { addDays, FIRST_DROP_DATE } from '../../fixtures/schema-evolution.ts';
import { checkCompatibility } from '../../pipelines/schema-evolution/compat.ts';
import { lakeDialect } from '../../pipelines/schema-evolution/lake-dialect.ts';
import { parseSchemaText } from '../../pipelines/schema-evolution/types.ts';

export interface LoadBenchmark {
  files: number;
  rows: number;
  loaderMs: number;
  copyMs: number;
}

export const BENCH_FILES = 3;
/** Rows per benchmark file: 150,000 at scale 1 (large enough that a file's fixed cost — schema read, check, log row — is not the whole story). */
export const benchRowsPerFile = (scale: number) => Math.max(1000, Math.round(150_000 * scale));

const COLUMNS = parseSchemaText('order_id INTEGER, customer_id BIGINT, amount DECIMAL(12,2), status VARCHAR, quantity INTEGER, discount DECIMAL(12,4), ship STRUCT(city VARCHAR, zip VARCHAR)');

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export async function benchmarkLoad(ctx: LabContext): Promise<LoadBenchmark> {
  const db = await ctx.engines.target(ctx.engine, 'schema_bench');
  const lake = lakeDialect(db);
  const reader = lake.readsFiles ? db : await ctx.engines.duckdb();
  const dir = ctx.engines.tempDir('schema-bench');
  // Through the engine layer (multi-row VALUES with binds), a target that cannot read the files
  // gets a thirtieth of the rows: 5,000 per file at scale 1 keeps `--engine postgres` demo-fast.
  const n = Math.max(100, Math.round(benchRowsPerFile(ctx.scale) / (lake.readsFiles ? 1 : 30)));
  // The seed is a number we own, inlined because COPY's query takes no bind parameters.
  const seed = Math.trunc(ctx.seed) >>> 0;
  const files: DropFile[] = [];
  for (let k = 0; k < BENCH_FILES; k++) {
    const path = join(dir, `bench_${k}.parquet`);
    await reader.exec(`
      COPY (
        SELECT CAST(i AS INTEGER) AS order_id,
               CAST(hash(i, ${seed}) % 10000000000 AS BIGINT) AS customer_id,
               CAST(CAST(hash(i, ${seed}, 1) % 100000000000 AS DECIMAL(14,0)) / 100 AS DECIMAL(12,2)) AS amount,
               ['new', 'paid', 'shipped', 'returned'][CAST(1 + hash(i, ${seed}, 2) % 4 AS INTEGER)] AS status,
               CAST(1 + hash(i, ${seed}, 3) % 20 AS INTEGER) AS quantity,
               CAST(CAST(hash(i, ${seed}, 4) % 500000 AS DECIMAL(12,0)) / 10000 AS DECIMAL(12,4)) AS discount,
               struct_pack(city := 'c' || CAST(hash(i, ${seed}, 5) % 50 AS VARCHAR), zip := CAST(10000 + hash(i, ${seed}, 6) % 90000 AS VARCHAR)) AS ship
        FROM range(${k * n}, ${(k + 1) * n}) AS t(i)
      ) TO ${nameLiteral(path)} (FORMAT parquet)`);
    files.push({ name: `bench_${k}.parquet`, path, format: 'parquet', date: addDays(FIRST_DROP_DATE, k) });
  }
  const copies: number[] = [];
  const loads: number[] = [];
  for (let round = 0; round < 3; round++) {
    const copy = `bench_copy_${round}`;
    await db.exec(`CREATE TABLE ${copy} (${COLUMNS.map((c) => `${c.name} ${lake.sqlType(c.type)}`).join(', ')})`);
    copies.push(await timed(async () => {
      for (const f of files) {
        if (lake.readsFiles) await db.exec(`INSERT INTO ${copy} SELECT * FROM read_parquet(${nameLiteral(f.path)})`);
        else {
          // The plain transport: every value as text (a struct as JSON), no check, no log.
          const text = COLUMNS.map((c) => (c.type.kind === 'struct' ? lake.structValue(c.name) : `CAST(${c.name} AS VARCHAR)`));
          const rows = await reader.query<Record<string, unknown>>(`SELECT ${text.map((t, i) => `${t} AS v${i}`).join(', ')} FROM read_parquet(${nameLiteral(f.path)})`);
          await db.insertRows(copy, COLUMNS.map((c) => c.name), rows.map((r) => COLUMNS.map((_, i) => r[`v${i}`])));
        }
      }
    }));
    const tables = { table: `bench_orders_${round}`, contract: `bench_contract_${round}`, log: `bench_log_${round}` };
    await createLake(db, tables);
    loads.push(await timed(async () => {
      for (const f of files) await loadDropFile(db, f, tables, checkCompatibility, reader);
    }));
    for (const t of [`bench_copy_${round}`, tables.table, tables.contract, tables.log]) await db.exec(`DROP TABLE ${t}`);
  }
  return { files: files.length, rows: n * files.length, loaderMs: Math.min(...loads), copyMs: Math.min(...copies) };
}
