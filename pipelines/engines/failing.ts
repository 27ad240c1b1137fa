import type { SqlEngine } from './types.ts';

/**
 * The same real engine, with a failure injected after `failAfter` successful statements (queries
 * and execs alike): where a process dies between two statements, the database keeps what was
 * committed before. How tests show that a multi-statement apply is one transaction (a failure
 * anywhere leaves the previous state), and how the quality lab's crash drill shows a gate that
 * commits twice leaving a batch half-written.
 */
export function failingAfter(db: SqlEngine, failAfter: number): SqlEngine {
  let n = 0;
  const tick = () => {
    if (++n > failAfter) throw new Error(`injected failure at statement ${n}`);
  };
  const wrap = (inner: SqlEngine): SqlEngine => ({
    name: inner.name,
    dialect: inner.dialect,
    query: async <T>(sql: string, params?: readonly unknown[]) => (tick(), inner.query<T>(sql, params)),
    exec: async (sql, params) => (tick(), inner.exec(sql, params)),
    transaction: (fn) => inner.transaction((tx) => fn(wrap(tx))),
    insertRows: (table, columns, rows) => inner.insertRows(table, columns, rows),
    close: () => inner.close(),
  });
  return wrap(db);
}
