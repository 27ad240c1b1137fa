/**
 * The reference SCD Type 2 load: apply one full source snapshot, taken on `snapshotDate`, to the
 * customer dimension. One transaction (on an engine that has them; see the end of this comment):
 *
 *   1. compute the change set: snapshot FULL OUTER JOIN current versions, NULL-safe comparison
 *      (of the columns, or of a per-engine digest of them: `Dialect.changeDigest`), and refuse it
 *      if a key appears twice (a stage without a unique key would open two versions);
 *   2. one MERGE that closes and opens versions from the change set (new surrogate keys above
 *      every existing one);
 *   3. one MERGE that overwrites the Type 1 column on every version of the keys whose Type 1
 *      value may differ (`type1_changed`).
 *
 * Every decision is made in step 1, against the state before the load, so running the same
 * snapshot again on the same day finds an empty change set (idempotent by construction). Steps
 * 2 and 3 touch only the keys in the change set, which keeps a daily load with 10% changes cheap.
 *
 * On an engine where each statement is its own commit (`Dialect.atomicity`: Delta Lake on Spark)
 * three statements cannot be one transaction: there the same change set is the source of one
 * MERGE that closes, opens and overwrites at once (`applyInOneMerge`) — one statement, one commit.
 */
import type { SqlEngine } from '../engines/types.ts';
import { FixtureError } from '../errors.ts';
import { createChangeSetTable, OPEN_END, type Scd2Tables } from './schema.ts';

/**
 * SQL predicate: version `alias` is valid on the date expression `dateExpr`. Half-open: a version
 * closed on d (valid_to = d) is not valid on d; the version opened on d is.
 */
export function validOn(alias: string, dateExpr: string): string {
  return `(${alias}.valid_from <= ${dateExpr} AND ${dateExpr} < ${alias}.valid_to)`;
}

export async function applyScd2Snapshot(db: SqlEngine, tables: Scd2Tables, snapshotDate: string): Promise<void> {
  if (db.dialect.atomicity === 'statement') return applyInOneMerge(db, tables, snapshotDate);
  return applyScd2SnapshotInSteps(db, tables, snapshotDate);
}

/**
 * The change set (step 1) as a SELECT: one row per key that needs work — its action, the
 * snapshot's values, and whether its Type 1 value may differ (see `createChangeSetTable`).
 */
function changeSetSelect(db: SqlEngine, tables: Scd2Tables): string {
  const d = db.dialect;
  // IS DISTINCT FROM, never <>: `NULL <> 'gold'` is NULL, which a WHERE or CASE reads as "no change".
  // Compared through the dialect's change digest (DuckDB: one hash per column group instead of the
  // strings, the bulk of this join's cost at 1M rows), which is NULL-safe the same way.
  const digest = (cols: string[]) => d.changeDigest?.(cols) ?? cols;
  const type2 = digest(['segment', 'city']);
  const type1 = digest(['email']);
  const project = (exprs: string[], prefix: string) => exprs.map((e, i) => `, ${e} AS ${prefix}${i}`).join('');
  const differs = (exprs: string[], prefix: string) => exprs.map((_, i) => d.distinct(`s.${prefix}${i}`, `c.${prefix}${i}`)).join(' OR ');
  const type2Differs = differs(type2, 'd2_');
  const type1Differs = differs(type1, 'd1_');
  return `
      SELECT COALESCE(s.customer_id, c.customer_id) AS customer_id,
             CASE WHEN c.customer_id IS NULL THEN 'open'
                  WHEN s.customer_id IS NULL THEN 'delete'
                  WHEN ${type2Differs} THEN 'change'
                  ELSE 'type1'
             END AS action,
             s.segment, s.city, s.email,
             s.customer_id IS NOT NULL AND (c.customer_id IS NULL OR ${type1Differs}) AS type1_changed
      FROM (SELECT customer_id, segment, city, email${project(type2, 'd2_')}${project(type1, 'd1_')} FROM ${d.ident(tables.stage)}) AS s
      FULL OUTER JOIN (SELECT customer_id${project(type2, 'd2_')}${project(type1, 'd1_')} FROM ${d.ident(tables.dim)} WHERE is_current) AS c
        ON c.customer_id = s.customer_id
      WHERE c.customer_id IS NULL OR s.customer_id IS NULL OR ${type2Differs} OR ${type1Differs}`;
}

/** Throws, before anything is written, when the change set `from` has a key twice. */
async function refuseRepeatedKeys(db: SqlEngine, from: string, snapshotDate: string): Promise<void> {
  const dup = await db.query<{ customer_id: number }>(`SELECT customer_id FROM ${from} GROUP BY customer_id HAVING COUNT(*) > 1 LIMIT 1`);
  if (dup.length > 0) throw new FixtureError(`snapshot ${snapshotDate} has customer_id ${dup[0]!.customer_id} more than once; nothing applied`);
}

/**
 * The three statements in one transaction (engines with transactions). Exported for the lab's
 * no-transaction pitfall, which runs them with each statement committed on its own.
 */
export async function applyScd2SnapshotInSteps(db: SqlEngine, tables: Scd2Tables, snapshotDate: string): Promise<void> {
  const d = db.dialect;
  const dim = d.ident(tables.dim);
  const changesName = tables.changes ?? `${tables.dim}_changes`;
  const changes = d.ident(changesName);
  const day = d.dateParam('$1');

  // DDL stays outside the transaction: some engines (Snowflake) commit an open transaction on DDL.
  await createChangeSetTable(db, changesName);

  await db.transaction(async (tx) => {
    await tx.exec(`DELETE FROM ${changes}`);
    await tx.exec(`INSERT INTO ${changes} (customer_id, action, segment, city, email, type1_changed)${changeSetSelect(tx, tables)}`);
    // The stage's primary key normally guarantees one row per key; checked here on the (small)
    // change set too, because two rows for one key would open two current versions.
    await refuseRepeatedKeys(tx, changes, snapshotDate);

    // New surrogate keys: above every existing one, and unique without numbering the opened keys in
    // order — max + 1 + (customer_id − the smallest opened id). Ids are distinct in the change set,
    // so keys never repeat; gaps are allowed, as with any sequence. ROW_NUMBER() OVER (ORDER BY
    // customer_id) gives dense keys but sorts every opened row: a quarter of the MERGE at 1M rows on
    // DuckDB. Sparse business keys (a span of 2^40 or more in one load) would burn key space or
    // overflow BIGINT that way: there the opened keys are numbered in order instead.
    const opened = `action IN ('open', 'change')`;
    const [range] = await tx.query<{ span: unknown }>(
      `SELECT CAST(MAX(customer_id) AS ${d.types.double}) - CAST(MIN(customer_id) AS ${d.types.double}) AS span FROM ${changes} WHERE ${opened}`,
    );
    const newSk = Number(range?.span ?? 0) < 2 ** 40 ? `customer_id - (SELECT MIN(customer_id) FROM ${changes} WHERE ${opened}) + 1` : 'ROW_NUMBER() OVER (ORDER BY customer_id)';

    // Each changed key enters the MERGE twice: with merge_key = its id (matches the current version:
    // close it) and with merge_key NULL (never matches: insert the new version). One statement, so
    // a key is never left with its old version closed and no new one.
    await tx.exec(
      `
      MERGE INTO ${dim} AS t
      USING (
        SELECT customer_id AS merge_key, action, CAST(NULL AS ${d.types.bigint}) AS customer_sk,
               customer_id, segment, city, email
        FROM ${changes}
        WHERE action IN ('change', 'delete')
        UNION ALL
        SELECT CAST(NULL AS ${d.types.bigint}), action,
               (SELECT COALESCE(MAX(customer_sk), 0) FROM ${dim}) + ${newSk},
               customer_id, segment, city, email
        FROM ${changes}
        WHERE ${opened}
      ) AS s
      ON t.customer_id = s.merge_key AND t.is_current
      WHEN MATCHED THEN UPDATE SET
        valid_to = ${day}, is_current = FALSE, is_deleted = (s.action = 'delete')
      WHEN NOT MATCHED AND s.merge_key IS NULL THEN INSERT
        (customer_sk, customer_id, segment, city, email, valid_from, valid_to, is_current, is_deleted)
        VALUES (s.customer_sk, s.customer_id, s.segment, s.city, s.email, ${day}, ${d.dateParam('$2')}, TRUE, FALSE)
      `,
      [snapshotDate, OPEN_END],
    );

    // Type 1: the latest value is the only value, so every version of the key carries it — a fact
    // joined to an old version shows today's email, as Type 1 promises. (Overwriting only the
    // current row would leave each old version with whatever email it had when it was closed.)
    // Only keys whose Type 1 value changed (decided in step 1): the join then probes the dimension
    // with those keys, not with every changed one. A MERGE rather than UPDATE … FROM: the one
    // spelling of an update from another table every engine here takes (Spark has no UPDATE … FROM).
    await tx.exec(`
      MERGE INTO ${dim} AS t
      USING (SELECT customer_id, email FROM ${changes} WHERE type1_changed) AS c
      ON t.customer_id = c.customer_id
      WHEN MATCHED AND ${d.distinct('t.email', 'c.email')} THEN UPDATE SET email = c.email`);
  });
}

/**
 * The whole load as one MERGE, for engines where only a single statement is atomic (Delta Lake).
 * The change set is the MERGE's source, read once and crossed with two copies: in copy 0 every key
 * that needs work has merge_key = its id, matching every version of the key — the current one is
 * closed (and takes the new email), older ones take the new email when the Type 1 value changed;
 * in copy 1 each opened key has merge_key NULL, which matches nothing and inserts the new version.
 * Each version of the dimension meets at most one source row, as a MERGE requires. The largest
 * surrogate key is a joined one-row table, not a scalar subquery: Delta 4.4's MERGE refuses a
 * scalar subquery over its own target beside another read of it ("Table does not support reads").
 */
async function applyInOneMerge(db: SqlEngine, tables: Scd2Tables, snapshotDate: string): Promise<void> {
  const d = db.dialect;
  const dim = d.ident(tables.dim);
  const day = d.dateParam('$1');
  // No primary key holds the stage's keys unique here (Delta has none): the change set is checked
  // before the write, as in the three statements — two rows for one key (a duplicated staged key, or
  // a key with two current versions) would open two versions, or match one version twice.
  await refuseRepeatedKeys(db, `(${changeSetSelect(db, tables)}) AS ch`, snapshotDate);
  // Dense new surrogate keys, numbered in key order: the sort of the opened rows costs nothing next
  // to a Delta commit, and sparse business keys cannot overflow them. (One task sorts them all: at
  // millions of opened keys a range-partitioned numbering would be the next step.) The ON clause
  // matches a closed version only when its Type 1 value is to be overwritten, so Delta rewrites the
  // files of old history only then; a row it no longer matches cannot reach the INSERT (merge_key
  // is not NULL).
  await db.exec(
    `
    MERGE INTO ${dim} AS t
    USING (
      SELECT CASE WHEN copy.n = 0 THEN ch.customer_id END AS merge_key, ch.action,
             CASE WHEN copy.n = 1 THEN base.max_sk + ROW_NUMBER() OVER (PARTITION BY copy.n ORDER BY ch.customer_id) END AS customer_sk,
             ch.customer_id, ch.segment, ch.city, ch.email, ch.type1_changed
      FROM (${changeSetSelect(db, tables)}) AS ch
      CROSS JOIN (VALUES (0), (1)) AS copy(n)
      CROSS JOIN (SELECT COALESCE(MAX(customer_sk), 0) AS max_sk FROM ${dim}) AS base
      WHERE (copy.n = 0 AND (ch.action IN ('change', 'delete') OR ch.type1_changed))
         OR (copy.n = 1 AND ch.action IN ('open', 'change'))
    ) AS s
    ON t.customer_id = s.merge_key AND (t.is_current OR s.type1_changed)
    WHEN MATCHED AND t.is_current AND s.action IN ('change', 'delete') THEN UPDATE SET
      valid_to = ${day}, is_current = FALSE, is_deleted = (s.action = 'delete'),
      email = CASE WHEN s.type1_changed THEN s.email ELSE t.email END
    WHEN MATCHED AND s.type1_changed AND ${d.distinct('t.email', 's.email')} THEN UPDATE SET email = s.email
    WHEN NOT MATCHED AND s.merge_key IS NULL THEN INSERT
      (customer_sk, customer_id, segment, city, email, valid_from, valid_to, is_current, is_deleted)
      VALUES (s.customer_sk, s.customer_id, s.segment, s.city, s.email, ${day}, ${d.dateParam('$2')}, TRUE, FALSE)
    `,
    [snapshotDate, OPEN_END],
  );
}
