/**
 * A quality gate as its own OS process, so a test can SIGKILL a real one between two statements:
 *
 *   node --import tsx pipelines/quality/gate-main.ts
 *   job (stdin, see pipelines/engines/child.ts): { url (PostgreSQL), batchDate, writerModule (file URL),
 *        writerExport, pauseAfter }
 *
 * It gates the batch with the writer `writerModule[writerExport]` (the reference's one transaction,
 * or a pitfall's two). Before statement `pauseAfter + 1` — queries and execs counted as in
 * `failingAfter` — it reports `paused` and waits: the parent then kills it with SIGKILL. No handler
 * runs, nothing is rolled back by the process: what survives is what the database had committed.
 */
import { runChild, send } from '../engines/child.ts';
import type { SqlEngine } from '../engines/types.ts';

export interface GateJob {
  url: string;
  batchDate: string;
  writerModule: string;
  writerExport: string;
  pauseAfter: number;
}

/** The engine, pausing forever (until the kill) before statement `after + 1`. */
function pausingAfter(db: SqlEngine, after: number): SqlEngine {
  let n = 0;
  const tick = async () => {
    if (++n <= after) return;
    send({ ev: 'paused', statement: n });
    // The interval keeps the event loop, and so the process, alive until the SIGKILL.
    await new Promise(() => setInterval(() => undefined, 1000));
  };
  const wrap = (inner: SqlEngine): SqlEngine => ({
    name: inner.name,
    dialect: inner.dialect,
    query: async <T>(sql: string, params?: readonly unknown[]) => (await tick(), inner.query<T>(sql, params)),
    exec: async (sql, params) => (await tick(), inner.exec(sql, params)),
    transaction: (fn) => inner.transaction((tx) => fn(wrap(tx))),
    insertRows: (table, columns, rows) => inner.insertRows(table, columns, rows),
    close: () => inner.close(),
  });
  return wrap(db);
}

runChild<GateJob>(async () => {
  const { PgEngine } = await import('../engines/postgres/driver.ts');
  const { gateBatch } = await import('./gate.ts');
  const { ORDERS_SUITE } = await import('./suite.ts');
  return async (job) => {
    const mod = (await import(job.writerModule)) as Record<string, unknown>;
    const write = mod[job.writerExport];
    if (typeof write !== 'function') throw new Error(`${job.writerModule} has no export ${job.writerExport}`);
    const db = await PgEngine.connect(job.url);
    try {
      const ev = await gateBatch(pausingAfter(db, job.pauseAfter), ORDERS_SUITE, job.batchDate, { write: write as never });
      send({ ev: 'done', rows: ev.rows });
    } finally {
      await db.close();
    }
  };
});
