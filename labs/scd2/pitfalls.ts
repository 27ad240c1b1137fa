/**
 * The SCD2 loads interview answers commonly give, each with one defect. The lab runs them through
 * the same claim checks as the reference; each must be rejected by at least one claim.
 */
import type { Pitfall } from '../contract.ts';
import type { Dialect, SqlEngine } from '../../pipelines/engines/types.ts';
import { applyScd2Snapshot, applyScd2SnapshotInSteps, validOn, OPEN_END, type Scd2Tables } from '../../pipelines/scd2/index.ts';
import type { Scd2Impl } from './scenario.ts';

/** The same engine, with some dialect pieces swapped (a pitfall that differs in one operator). */
export function withDialect(db: SqlEngine, override: Partial<Dialect>): SqlEngine {
  const dialect: Dialect = { ...db.dialect, ...override };
  const wrap = (inner: SqlEngine): SqlEngine => ({
    name: inner.name,
    dialect,
    query: <T>(sql: string, params?: readonly unknown[]) => inner.query<T>(sql, params),
    exec: (sql, params) => inner.exec(sql, params),
    transaction: <T>(fn: (tx: SqlEngine) => Promise<T>) => inner.transaction((tx) => fn(wrap(tx))),
    insertRows: (table, columns, rows) => inner.insertRows(table, columns, rows),
    close: () => inner.close(),
  });
  return wrap(db);
}

/** The same engine, its `transaction` running the body straight on the connection: every statement commits alone. */
function withoutTransactions(db: SqlEngine): SqlEngine {
  const autocommit: SqlEngine = {
    name: db.name,
    dialect: db.dialect,
    query: <T>(sql: string, params?: readonly unknown[]) => db.query<T>(sql, params),
    exec: (sql, params) => db.exec(sql, params),
    transaction: (fn) => fn(autocommit),
    insertRows: (table, columns, rows) => db.insertRows(table, columns, rows),
    close: () => db.close(),
  };
  return autocommit;
}

/**
 * The reference's statements, each committed on its own (no transaction around the apply): correct
 * as long as nothing fails, half a load when something does.
 */
const noTransaction: Scd2Impl = {
  // The three statements, also where the reference is one MERGE (Delta Lake): there they are what
  // a transaction around them amounts to.
  applySnapshot: (db, tables, date) => applyScd2SnapshotInSteps(withoutTransactions(db), tables, date),
  validOn,
};

/**
 * Change detection with `<>` on the columns: `NULL <> 'gold'` is NULL, so NULL ↔ value changes
 * look like "no change". (The columns themselves: a digest that is never NULL would hide the defect.)
 */
const neqChangeDetection: Scd2Impl = {
  applySnapshot: (db, tables, date) =>
    applyScd2Snapshot(withDialect(db, { distinct: (a, b) => `(${a} <> ${b})`, changeDigest: undefined }), tables, date),
  validOn,
};

/**
 * The statements the two hand-written loads below share, for one dimension and stage: quoted
 * names, the load date as `$1`, an INSERT of an open version from `$1` for each staged row `s` a
 * FROM/WHERE tail selects (binds `$1`, `$2` = open end), and the Type 1 overwrite of every version.
 */
function loadSql(db: SqlEngine, tables: Scd2Tables) {
  const d = db.dialect;
  const dim = d.ident(tables.dim);
  const stage = d.ident(tables.stage);
  const day = d.dateParam('$1');
  return {
    d,
    dim,
    stage,
    day,
    insertOpenVersions: (tail = '') =>
      `INSERT INTO ${dim} (customer_sk, customer_id, segment, city, email, valid_from, valid_to, is_current, is_deleted)
         SELECT (SELECT COALESCE(MAX(customer_sk), 0) FROM ${dim}) + ROW_NUMBER() OVER (ORDER BY s.customer_id),
                s.customer_id, s.segment, s.city, s.email, ${day}, ${d.dateParam('$2')}, TRUE, FALSE
         FROM ${stage} AS s ${tail}`,
    // The source as a subquery: fakesnow cannot resolve a bare table's columns in a MERGE's USING.
    type1Overwrite: `MERGE INTO ${dim} AS t USING (SELECT customer_id, email FROM ${stage}) AS s ON t.customer_id = s.customer_id
      WHEN MATCHED AND ${d.distinct('t.email', 's.email')} THEN UPDATE SET email = s.email`,
    /**
     * Closes (valid_to = $1) the current versions `which` selects from `cv` (current version)
     * LEFT JOIN `sv` (its staged row, if any), is_deleted when the key is gone. A MERGE: Delta
     * Lake takes no subquery in an UPDATE, and every engine here takes this. (Aliases unlike the
     * MERGE's own: fakesnow resolves an inner `s` against the outer one.) Matched by version
     * (customer_sk), as the UPDATE it replaces closed each row: a pitfall that left a key two
     * current versions must not fail here on "a target row matched twice".
     */
    expire: (which: string) =>
      `MERGE INTO ${dim} AS t
       USING (SELECT cv.customer_sk, sv.customer_id IS NULL AS gone
              FROM ${dim} AS cv LEFT JOIN ${stage} AS sv ON sv.customer_id = cv.customer_id
              WHERE cv.is_current AND (${which})) AS x
       ON t.customer_sk = x.customer_sk
       WHEN MATCHED THEN UPDATE SET valid_to = ${day}, is_current = FALSE, is_deleted = x.gone`,
  };
}

/**
 * Expire, then insert new versions for the rows "expired today". Run once a day it works; run the
 * same snapshot again on the same day (a retried job) and the rows expired earlier today still
 * have valid_to = today, so their new versions are inserted a second time.
 */
const expireThenInsert: Scd2Impl = {
  validOn,
  async applySnapshot(db: SqlEngine, tables: Scd2Tables, date: string) {
    const { d, dim, day, insertOpenVersions, type1Overwrite, expire } = loadSql(db, tables);
    await db.transaction(async (tx) => {
      // 1. Expire current versions whose tracked values changed, and those of deleted keys.
      await tx.exec(expire(`sv.customer_id IS NULL OR ${d.distinct('sv.segment', 'cv.segment')} OR ${d.distinct('sv.city', 'cv.city')}`), [date]);
      // 2. Insert a first version for keys with no version current or expired today (new, or re-appearing).
      await tx.exec(insertOpenVersions(`WHERE NOT EXISTS (SELECT 1 FROM ${dim} AS v WHERE v.customer_id = s.customer_id AND (v.is_current OR v.valid_to = ${day}))`), [date, OPEN_END]);
      // 3. The defect: new versions for the rows "expired today" — true again on a same-day re-run.
      await tx.exec(insertOpenVersions(`JOIN ${dim} AS v ON v.customer_id = s.customer_id AND v.valid_to = ${day} AND NOT v.is_current AND NOT v.is_deleted`), [date, OPEN_END]);
      await tx.exec(type1Overwrite);
    });
  },
};

/**
 * Stream style: every row that arrives expires the current version and inserts a new one. With a
 * stream of upstream writes (or a full snapshot, where every row "arrives"), rows that did not
 * change — an ORM re-save, a touched timestamp, a re-delivered event — get new versions.
 */
const streamReinsert: Scd2Impl = {
  validOn,
  async applySnapshot(db: SqlEngine, tables: Scd2Tables, date: string) {
    const { insertOpenVersions, type1Overwrite, expire } = loadSql(db, tables);
    await db.transaction(async (tx) => {
      await tx.exec(expire('TRUE'), [date]);
      await tx.exec(insertOpenVersions(), [date, OPEN_END]);
      await tx.exec(type1Overwrite);
    });
  },
};

/** The reference load, queried with `<=` on both ends: on a change day, the closed and the new version both match. */
const inclusiveValidTo: Scd2Impl = {
  applySnapshot: applyScd2Snapshot,
  validOn: (alias, dateExpr) => `(${alias}.valid_from <= ${dateExpr} AND ${dateExpr} <= ${alias}.valid_to)`,
};

export const scd2Pitfalls: Pitfall<Scd2Impl>[] = [
  {
    name: 'neq-change-detection',
    title: 'detects changes with != / <> instead of IS DISTINCT FROM',
    description:
      'The MERGE of many answers compares tracked columns with `!=`. With a NULL on either side the comparison is NULL, ' +
      'which WHEN MATCHED AND … treats as false: a segment going from NULL to gold (or back) is silently not versioned.',
    impl: neqChangeDetection,
  },
  {
    name: 'expire-then-insert-rerun',
    title: 'expires, then inserts versions for rows "expired today" — re-run on the same day',
    description:
      'Two statements: expire the changed current rows (valid_to = today), then insert new versions joined on valid_to = today. ' +
      'A retried job re-runs the second statement against the rows expired by the first run and inserts every new version again: two current rows.',
    impl: expireThenInsert,
  },
  {
    name: 'stream-reinsert',
    title: 'expires and re-inserts on every upstream write (no change detection)',
    description:
      'Stream/task pipelines that treat each arriving row as a change version rows that did not change: ' +
      'history fills with identical versions, and a Type 1-only edit opens a version as well.',
    impl: streamReinsert,
  },
  {
    name: 'no-transaction',
    title: 'the right statements, each committed on its own (no transaction around the apply)',
    description:
      'Close the changed versions, insert the new ones, overwrite Type 1: correct while nothing fails. A job killed or a ' +
      'statement failing half way leaves versions closed with no successor (keys that vanish from the as-of view) until someone notices.',
    impl: noTransaction,
    shows: 'atomic-apply',
  },
  {
    name: 'inclusive-valid-to',
    title: 'closes with valid_to = d but queries valid_from <= d AND d <= valid_to',
    description:
      'The load closes the old version on the day the new one opens (half-open windows), but the as-of query uses <= on both ends: ' +
      'on every change day two versions are valid, so the fact join counts that day\'s orders twice.',
    impl: inclusiveValidTo,
  },
];
