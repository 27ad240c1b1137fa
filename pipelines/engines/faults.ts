/**
 * Failure injection on a real engine: the same connection, with a failure after a chosen number of
 * statements. How a lab (and its tests) shows that a multi-statement write is one transaction: a
 * failure at any statement boundary must leave the previous state.
 */
import type { SqlEngine } from './types.ts';

/** `db`, failing with an error at its (`failAfter` + 1)-th statement (query, exec or insertRows). */
export function failingAfter(db: SqlEngine, failAfter: number): SqlEngine {
  let n = 0;
  const tick = () => {
    if (++n > failAfter) throw new InjectedFailure(n);
  };
  const wrap = (inner: SqlEngine): SqlEngine => ({
    name: inner.name,
    dialect: inner.dialect,
    query: async <T>(sql: string, params?: readonly unknown[]) => (tick(), inner.query<T>(sql, params)),
    exec: async (sql, params) => (tick(), inner.exec(sql, params)),
    transaction: (fn) => inner.transaction((tx) => fn(wrap(tx))),
    insertRows: async (table, columns, rows) => (tick(), inner.insertRows(table, columns, rows)),
    close: () => inner.close(),
  });
  return wrap(db);
}

export class InjectedFailure extends Error {
  constructor(readonly statement: number) {
    super(`injected failure at statement ${statement}`);
  }
}

export interface AllOrNothingProbe<S> {
  /** Statement boundaries a failure was injected at (the write's statement count). */
  failurePoints: number;
  /** The first failure that left a state other than the one before: after how many statements, and both states. */
  violation?: { afterStatements: number; before: S; after: S };
}

/**
 * Runs `write` on `failingAfter(db, 0)`, `failingAfter(db, 1)`, … until it succeeds (so `db` ends
 * with the write done, as one plain call would leave it), comparing `state()` after each injected
 * failure with the state before. Stops at the first violation (the state is then no longer the
 * one the write started from).
 */
export async function probeAllOrNothing<S>(db: SqlEngine, write: (db: SqlEngine) => Promise<unknown>, state: () => Promise<S>, same: (a: S, b: S) => boolean, maxPoints = 200): Promise<AllOrNothingProbe<S>> {
  const before = await state();
  for (let k = 0; k < maxPoints; k++) {
    let failed = false;
    try {
      await write(failingAfter(db, k));
    } catch (err) {
      if (!(err instanceof InjectedFailure)) throw err;
      failed = true;
    }
    if (!failed) return { failurePoints: k };
    const after = await state();
    if (!same(before, after)) return { failurePoints: k + 1, violation: { afterStatements: k, before, after } };
  }
  throw new Error(`probeAllOrNothing: the write still failed after ${maxPoints} injected failure points`);
}
