/**
 * The customer dimension of the `scd2` lab and the tables around it.
 *
 *   customer_sk            surrogate key: one per version, never reused
 *   customer_id            business key (the source's primary key)
 *   segment, city          Type 2: a change closes the current version and opens a new one
 *   email                  Type 1: overwritten in place, on every version of the key (see apply.ts)
 *   valid_from, valid_to   half-open window [valid_from, valid_to); the open end is the explicit
 *                          date 9999-12-31, not NULL, so `d < valid_to` needs no COALESCE
 *   is_current             the version valid now; at most one per key, none once the key is deleted
 *   is_deleted             this version was closed because the key vanished from the source
 */
import type { SqlEngine } from '../engines/types.ts';
import { ensureColumns } from '../engines/catalog.ts';

/** The explicit open end of a current version's window. */
export const OPEN_END = '9999-12-31';

export interface Scd2Tables {
  /** The Type 2 dimension. */
  dim: string;
  /** One full source snapshot, as extracted on the date being applied. */
  stage: string;
  /** Work table for the change set of one load (default `<dim>_changes`); holds the last load's changes. Unused where the load is one MERGE (Delta). */
  changes?: string;
}

export const DIM_COLUMNS = ['customer_sk', 'customer_id', 'segment', 'city', 'email', 'valid_from', 'valid_to', 'is_current', 'is_deleted'] as const;
export const SNAPSHOT_COLUMNS = ['customer_id', 'segment', 'city', 'email'] as const;

export async function createDimension(db: SqlEngine, dim: string): Promise<void> {
  const { types: t, ident } = db.dialect;
  await db.exec(`
    CREATE TABLE ${ident(dim)} (
      customer_sk ${t.bigint} NOT NULL,
      customer_id ${t.bigint} NOT NULL,
      segment     ${t.text},
      city        ${t.text},
      email       ${t.text},
      valid_from  ${t.date} NOT NULL,
      valid_to    ${t.date} NOT NULL,
      is_current  ${t.bool} NOT NULL,
      is_deleted  ${t.bool} NOT NULL
    )`);
}

/**
 * A table holding one full snapshot (the stage) — same columns as the source. The business key is
 * its primary key: an extract with a duplicate key fails at load, before any SCD logic runs (not
 * on Delta Lake, which has no primary keys: there the apply refuses it).
 */
export async function createSnapshotTable(db: SqlEngine, name: string): Promise<void> {
  const { types: t, ident } = db.dialect;
  // Delta Lake takes no PRIMARY KEY (Dialect.primaryKeys): there the load checks the stage's keys itself.
  await db.exec(`
    CREATE TABLE ${ident(name)} (
      customer_id ${t.bigint} NOT NULL${db.dialect.primaryKeys === false ? '' : ' PRIMARY KEY'},
      segment     ${t.text},
      city        ${t.text},
      email       ${t.text}
    )`);
}

/**
 * The change set of one load: one row per key that needs work. `action` is
 *   open    no current version (a new key, or one re-appearing after a delete)
 *   change  a Type 2 value differs from the current version (close it, open a new one)
 *   delete  the key is missing from the full snapshot (close it, is_deleted)
 *   type1   only the Type 1 email differs (overwrite, no version)
 * and `type1_changed`: the key's versions may carry another email than the snapshot's — a `type1`,
 * a `change` that also changed the email, every `open` (a re-appearing key's closed versions) —
 * the keys the Type 1 overwrite visits.
 */
export async function createChangeSetTable(db: SqlEngine, name: string): Promise<void> {
  const t = db.dialect.types;
  // ensureColumns, not CREATE TABLE IF NOT EXISTS alone: a work table made before `type1_changed`
  // existed gets the column (it only ever holds the current load's rows, deleted first).
  await ensureColumns(db, name, [
    { name: 'customer_id', type: `${t.bigint} NOT NULL` },
    { name: 'action', type: `${t.text} NOT NULL` },
    { name: 'segment', type: t.text },
    { name: 'city', type: t.text },
    { name: 'email', type: t.text },
    { name: 'type1_changed', type: t.bool },
  ]);
}
