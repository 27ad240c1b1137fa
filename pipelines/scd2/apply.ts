/**
 * The reference SCD Type 2 load: apply one full source snapshot, taken on `snapshotDate`, to the
 * customer dimension. One transaction, three statements:
 *
 *   1. refuse a snapshot with a duplicate business key (it would open two current versions);
 *   2. one MERGE that closes and opens versions (Type 2 columns, deletes, new keys);
 *   3. one UPDATE that overwrites the Type 1 column on every version of the key.
 *
 * Everything is decided against the state *before* the load, inside the one MERGE, so running the
 * same snapshot again on the same day finds nothing to do (idempotent by construction).
 */
import type { SqlEngine } from '../engines/types.ts';
import { FixtureError } from '../errors.ts';
import { OPEN_END, type Scd2Tables } from './schema.ts';

/**
 * SQL predicate: version `alias` is valid on the date expression `dateExpr`. Half-open: a version
 * closed on d (valid_to = d) is not valid on d; the version opened on d is.
 */
export function validOn(alias: string, dateExpr: string): string {
  return `(${alias}.valid_from <= ${dateExpr} AND ${dateExpr} < ${alias}.valid_to)`;
}

export async function applyScd2Snapshot(db: SqlEngine, tables: Scd2Tables, snapshotDate: string): Promise<void> {
  const d = db.dialect;
  const dim = d.ident(tables.dim);
  const stage = d.ident(tables.stage);
  const day = d.dateParam('$1');
  // A Type 2 attribute changed. IS DISTINCT FROM, not <>: `NULL <> 'gold'` is NULL, i.e. "no change".
  const type2Changed = `${d.distinct('s.segment', 'c.segment')} OR ${d.distinct('s.city', 'c.city')}`;

  await db.transaction(async (tx) => {
    const dup = await tx.query<{ customer_id: number }>(`SELECT customer_id FROM ${stage} GROUP BY customer_id HAVING COUNT(*) > 1 LIMIT 1`);
    if (dup.length > 0) throw new FixtureError(`snapshot ${snapshotDate} has customer_id ${dup[0]!.customer_id} more than once; nothing applied`);

    // Source rows with merge_key = the business key close the current version; rows with
    // merge_key NULL never match, so they INSERT the new version. One statement does both.
    await tx.exec(
      `
      MERGE INTO ${dim} AS t
      USING (
        WITH cur AS (
          SELECT customer_id, segment, city FROM ${dim} WHERE is_current
        ),
        delta AS (
          SELECT COALESCE(s.customer_id, c.customer_id) AS customer_id,
                 s.segment, s.city, s.email,
                 CASE WHEN c.customer_id IS NULL THEN 'open'      -- a new key, or one that re-appears
                      WHEN s.customer_id IS NULL THEN 'delete'    -- gone from the full snapshot
                      ELSE 'change'                               -- a Type 2 value differs
                 END AS action
          FROM ${stage} AS s
          FULL OUTER JOIN cur AS c ON c.customer_id = s.customer_id
          WHERE c.customer_id IS NULL OR s.customer_id IS NULL OR ${type2Changed}
        ),
        sk AS (
          SELECT COALESCE(MAX(customer_sk), 0) AS last_sk FROM ${dim}
        )
        SELECT customer_id AS merge_key, action, CAST(NULL AS ${d.types.bigint}) AS customer_sk,
               customer_id, segment, city, email
        FROM delta
        WHERE action IN ('change', 'delete')
        UNION ALL
        SELECT CAST(NULL AS ${d.types.bigint}), action, sk.last_sk + ROW_NUMBER() OVER (ORDER BY delta.customer_id),
               customer_id, segment, city, email
        FROM delta CROSS JOIN sk
        WHERE action IN ('open', 'change')
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
    // joined to a 2019 version shows today's email, as Type 1 promises. (Overwriting only the
    // current row would leave each old version with whatever email it had when it was closed.)
    await tx.exec(`
      UPDATE ${dim} AS t
      SET email = s.email
      FROM ${stage} AS s
      WHERE t.customer_id = s.customer_id AND ${d.distinct('t.email', 's.email')}`);
  });
}
