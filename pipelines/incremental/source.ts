/**
 * Runs the seeded workload schedule (fixtures/incremental.ts) against the PostgreSQL source with
 * one real connection per writer: BEGIN, writes and COMMIT happen exactly in schedule order, and
 * an `extract` event calls the caller's extraction while the other writers' transactions are
 * held open. Two rules keep the evidence the same for the same seed:
 *   - after each BEGIN the writer waits until the server clock has left that millisecond, so no
 *     two transactions share a timestamp by accident;
 *   - a `begin-tied` pair is begun on both connections at once and retried until both got the
 *     same millisecond, so the ties that matter are there on purpose.
 */
import type { PgEngine } from '../engines/postgres/driver.ts';
import type { OrderRow, RowOp, TxRole, Workload } from '../../fixtures/incremental.ts';

export interface TxTiming {
  tx: number;
  writer: number;
  role: TxRole | 'initial';
  /** now() of the transaction (its start), as the rows it wrote carry it. */
  began: Date;
  /** Server clock just before COMMIT. */
  committed: Date;
  /** Extractions that had run when it began / when it committed. */
  extractionsAtBegin: number;
  extractionsAtCommit: number;
  /** Keys it wrote. */
  keys: number[];
}

export async function loadInitialRows(db: PgEngine, rows: readonly OrderRow[], table = 'orders'): Promise<void> {
  if (rows.length === 0) return;
  await db.exec(
    `INSERT INTO "${table}" (id, customer_id, order_date, amount, discount, status)
     SELECT * FROM unnest($1::bigint[], $2::int[], $3::date[], $4::numeric[], $5::numeric[], $6::text[])`,
    [rows.map((r) => r.id), rows.map((r) => r.customer_id), rows.map((r) => r.order_date), rows.map((r) => r.amount), rows.map((r) => r.discount), rows.map((r) => r.status)],
  );
}

async function applyOp(db: PgEngine, op: RowOp): Promise<number> {
  switch (op.kind) {
    case 'insert': {
      const r = op.row;
      await db.exec(`INSERT INTO orders (id, customer_id, order_date, amount, discount, status) VALUES ($1, $2, $3, $4, $5, $6)`, [r.id, r.customer_id, r.order_date, r.amount, r.discount, r.status]);
      return r.id;
    }
    case 'update':
      await db.exec(`UPDATE orders SET status = $2, amount = $3, discount = $4 WHERE id = $1`, [op.id, op.status, op.amount, op.discount]);
      return op.id;
    case 'soft-delete':
      await db.exec(`UPDATE orders SET deleted = TRUE WHERE id = $1`, [op.id]);
      return op.id;
  }
}

const START = `SELECT date_trunc('milliseconds', now()) AS t`;

/** Waits (inside the open transaction) until the server clock has left the millisecond of its now(). */
async function leaveMillisecond(db: PgEngine): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    const [c] = await db.query<{ ok: boolean }>(`SELECT clock_timestamp() >= date_trunc('milliseconds', now()) + interval '1 millisecond' AS ok`);
    if (c!.ok) return;
  }
}

/** BEGIN, read the transaction's now(), and wait until the server clock has left its millisecond. */
async function begin(db: PgEngine): Promise<Date> {
  await db.exec('BEGIN');
  const [r] = await db.query<{ t: Date }>(START);
  await leaveMillisecond(db);
  return r!.t;
}

/**
 * Runs the schedule. `extract(run)` is awaited at each extract event. Returns every transaction's
 * timing (the initial load as tx 0) and, per key, the transaction whose write the source holds last.
 */
export async function runWorkload(
  writers: readonly PgEngine[],
  workload: Workload,
  extract: (run: number) => Promise<void>,
): Promise<{ txs: TxTiming[]; lastWriter: Map<number, number> }> {
  const plan = new Map(workload.txs.map((t) => [t.tx, t]));
  const timings = new Map<number, TxTiming>();
  const lastWriter = new Map<number, number>();
  let extractions = 0;
  const conn = (tx: number) => writers[plan.get(tx)!.writer]!;
  const opened = (tx: number, began: Date) =>
    timings.set(tx, { tx, writer: plan.get(tx)!.writer, role: plan.get(tx)!.role, began, committed: began, extractionsAtBegin: extractions, extractionsAtCommit: -1, keys: [] });

  const w0 = writers[0]!;
  const initialBegan = await begin(w0);
  await loadInitialRows(w0, workload.initial);
  const [c0] = await w0.query<{ t: Date }>('SELECT clock_timestamp() AS t');
  await w0.exec('COMMIT');
  timings.set(0, { tx: 0, writer: 0, role: 'initial', began: initialBegan, committed: c0!.t, extractionsAtBegin: 0, extractionsAtCommit: 0, keys: workload.initial.map((r) => r.id) });
  for (const r of workload.initial) lastWriter.set(r.id, 0);

  for (const ev of workload.events) {
    switch (ev.kind) {
      case 'begin':
        opened(ev.tx, await begin(conn(ev.tx)));
        break;
      case 'begin-tied': {
        const [a, b] = ev.txs;
        const t = await beginTiedPair(conn(a), conn(b));
        opened(a, t);
        opened(b, t);
        break;
      }
      case 'write': {
        const t = timings.get(ev.tx)!;
        for (const op of ev.ops) t.keys.push(await applyOp(conn(ev.tx), op));
        break;
      }
      case 'commit': {
        const db = conn(ev.tx);
        const t = timings.get(ev.tx)!;
        const [c] = await db.query<{ t: Date }>('SELECT clock_timestamp() AS t');
        await db.exec('COMMIT');
        t.committed = c!.t;
        t.extractionsAtCommit = extractions;
        for (const k of t.keys) lastWriter.set(k, ev.tx);
        break;
      }
      case 'extract':
        await extract(ev.run);
        extractions++;
        break;
    }
  }
  return { txs: [...timings.values()].sort((a, b) => a.tx - b.tx), lastWriter };
}

/** Begins a transaction on both connections at once until both start in the same millisecond, then waits as `begin` does. */
async function beginTiedPair(a: PgEngine, b: PgEngine): Promise<Date> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const [ta, tb] = await Promise.all([a, b].map(async (db) => (await db.exec('BEGIN'), (await db.query<{ t: Date }>(START))[0]!.t)));
    if (ta!.getTime() === tb!.getTime()) {
      await leaveMillisecond(a);
      return ta!;
    }
    await Promise.all([a.exec('ROLLBACK'), b.exec('ROLLBACK')]);
  }
  throw new Error('two transactions could not be begun in the same millisecond in 200 attempts');
}

/** Hard DELETEs (no tombstone, no timestamp left behind). */
export async function hardDelete(db: PgEngine, keys: readonly number[]): Promise<void> {
  await db.exec(`DELETE FROM orders WHERE id = ANY($1::bigint[])`, [keys]);
}

