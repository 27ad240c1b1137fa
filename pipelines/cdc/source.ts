/**
 * The operational side: creates the source tables and runs the seeded workload against them as
 * real transactions. Each transaction runs in "rounds" (a key appears at most once per round, in
 * its order), and each round as a few set statements (`unnest` of bind arrays): one round trip per
 * statement instead of per row, while every row change is still its own WAL record.
 */
import type { PgEngine } from '../engines/postgres/driver.ts';
import { KEY, PG_ARRAY_TYPE, SOURCE_DDL, type CdcOp, type CdcTable, type Row, type WorkloadItem } from '../../fixtures/cdc.ts';

const q = (n: string) => `"${n}"`;

export async function createSourceTables(db: PgEngine, initial: { customers: Row[]; orders: Row[] }): Promise<void> {
  for (const sql of SOURCE_DDL) await db.exec(sql);
  await db.transaction(async () => {
    await insertRows(db, 'customers', initial.customers);
    await insertRows(db, 'orders', initial.orders);
  });
}

async function insertRows(db: PgEngine, table: CdcTable, rows: Row[]): Promise<void> {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]!);
  await db.exec(
    `INSERT INTO ${q(table)} (${cols.map(q).join(', ')}) SELECT * FROM unnest(${cols.map((c, i) => `$${i + 1}::${PG_ARRAY_TYPE[c]}`).join(', ')})`,
    cols.map((c) => rows.map((r) => r[c] ?? null)),
  );
}

async function updateRows(db: PgEngine, table: CdcTable, rows: Row[]): Promise<void> {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]!);
  const key = KEY[table];
  const set = cols.filter((c) => c !== key);
  await db.exec(
    `UPDATE ${q(table)} AS t SET ${set.map((c) => `${q(c)} = u.${q(c)}`).join(', ')}
       FROM unnest(${cols.map((c, i) => `$${i + 1}::${PG_ARRAY_TYPE[c]}`).join(', ')}) AS u(${cols.map(q).join(', ')})
      WHERE t.${q(key)} = u.${q(key)}`,
    cols.map((c) => rows.map((r) => r[c] ?? null)),
  );
}

async function deleteRows(db: PgEngine, table: CdcTable, keys: number[]): Promise<void> {
  if (keys.length === 0) return;
  await db.exec(`DELETE FROM ${q(table)} WHERE ${q(KEY[table])} = ANY($1::${PG_ARRAY_TYPE[KEY[table]]})`, [keys]);
}

/** Splits a transaction's ops into rounds: a key's n-th op goes to round n (per-key order kept). */
export function rounds(ops: readonly CdcOp[]): CdcOp[][] {
  const out: CdcOp[][] = [];
  const lastRound = new Map<string, number>();
  for (const op of ops) {
    const id = `${op.table}:${op.key}`;
    const r = (lastRound.get(id) ?? -1) + 1;
    lastRound.set(id, r);
    (out[r] ??= []).push(op);
  }
  return out;
}

async function runTxn(db: PgEngine, ops: readonly CdcOp[]): Promise<void> {
  await db.transaction(async () => {
    for (const round of rounds(ops)) {
      for (const table of ['customers', 'orders'] as const) {
        const mine = round.filter((o) => o.table === table);
        await deleteRows(db, table, mine.filter((o) => o.kind === 'delete').map((o) => o.key));
        await insertRows(db, table, mine.filter((o) => o.kind === 'insert').map((o) => o.row!));
        await updateRows(db, table, mine.filter((o) => o.kind === 'update').map((o) => o.row!));
      }
    }
  });
}

export interface WorkloadRun {
  transactions: number;
  changes: number;
  ddl: number;
  ms: number;
}

/** Runs the workload items in order; `onItem` is told after each (for sampling lag while it runs). */
export async function runWorkload(db: PgEngine, items: readonly WorkloadItem[], signal?: AbortSignal): Promise<WorkloadRun> {
  const t0 = performance.now();
  const run: WorkloadRun = { transactions: 0, changes: 0, ddl: 0, ms: 0 };
  for (const item of items) {
    if (signal?.aborted) break;
    if (item.kind === 'ddl') {
      await db.exec(item.sql);
      run.ddl += 1;
      continue;
    }
    await runTxn(db, item.ops);
    run.transactions += 1;
    run.changes += item.ops.length;
  }
  run.ms = performance.now() - t0;
  return run;
}

/** WAL position now (after the workload's last commit): the capture is done when its slot has confirmed this. */
export async function currentWalLsn(db: PgEngine): Promise<string> {
  const [r] = await db.query<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`);
  return r!.lsn;
}

/** A slot pins WAL and blocks DROP DATABASE: drop it (retry while its walsender lets go), and the publication. */
export async function dropSlotAndPublication(source: PgEngine, names: { slot: string; publication: string }): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const [r] = await source.query<{ active: boolean }>(`SELECT active FROM pg_replication_slots WHERE slot_name = $1`, [names.slot]).catch(() => [undefined]);
    if (!r) break;
    if (!r.active) {
      await source.exec(`SELECT pg_drop_replication_slot($1)`, [names.slot]).catch(() => undefined);
      continue;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  await source.exec(`DROP PUBLICATION IF EXISTS ${source.dialect.ident(names.publication)}`).catch(() => undefined);
}
