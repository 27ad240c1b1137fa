/**
 * Exercise: write the SCD Type 2 load of one snapshot — the function an interviewer asks for.
 *
 * The dimension (tables.dim) has the columns
 *   customer_sk BIGINT     surrogate key, unique per version
 *   customer_id BIGINT     business key
 *   segment, city TEXT     Type 2: a change closes the current version and opens a new one
 *   email TEXT             Type 1: overwrite, on every version of the key, no new version
 *   valid_from, valid_to   DATE, half-open [valid_from, valid_to); open end = DATE '9999-12-31'
 *   is_current BOOLEAN     exactly one per key present in the source, none for deleted keys
 *   is_deleted BOOLEAN     this version was closed because the key vanished from the source
 *
 * tables.stage holds the FULL source snapshot taken on `snapshotDate` (customer_id, segment, city, email).
 * A key missing from it was deleted upstream; if it comes back later it gets a new version.
 *
 * Rules the checks hold you to (npm run check -- scd2):
 *   - a Type 2 change closes the current version at snapshotDate and opens one from snapshotDate;
 *   - NULL → value and value → NULL are changes; NULL → NULL is not;
 *   - running the same snapshot twice on the same day changes nothing;
 *   - all of it happens in one transaction (db.transaction).
 * Use bind parameters ($1, $2, …) for values; db.dialect.ident(name) for table names,
 * db.dialect.dateParam('$1') for a DATE parameter, db.dialect.distinct(a, b) for IS DISTINCT FROM.
 */
import type { SqlEngine } from '../../../pipelines/engines/types.ts';
import type { Scd2Tables } from '../../../pipelines/scd2/schema.ts';

/** Applies the full snapshot in `tables.stage`, taken on `snapshotDate` ('YYYY-MM-DD'), to `tables.dim`. */
export async function applyScd2Snapshot(db: SqlEngine, tables: Scd2Tables, snapshotDate: string): Promise<void> {
  const dim = db.dialect.ident(tables.dim);
  const stage = db.dialect.ident(tables.stage);
  await db.transaction(async (tx) => {
    // TODO 1: close the current version of keys whose segment or city changed, and of keys
    //         missing from the stage (those get is_deleted = TRUE).
    // TODO 2: open a version from snapshotDate (valid_to 9999-12-31, is_current TRUE) for new keys,
    //         re-appearing keys and changed keys; new customer_sk values must not collide.
    // TODO 3: overwrite email (Type 1) on every version of the key.
    void tx;
    throw new Error(`TODO: applyScd2Snapshot(${dim} ← ${stage}, ${snapshotDate}) is not written yet`);
  });
}

/**
 * Optional: the as-of predicate the checks use to read your dimension. The default (the
 * reference's) is `valid_from <= d AND d < valid_to`; export your own to try another.
 */
// export function validOn(alias: string, dateExpr: string): string {
//   return `(${alias}.valid_from <= ${dateExpr} AND ${dateExpr} < ${alias}.valid_to)`;
// }
