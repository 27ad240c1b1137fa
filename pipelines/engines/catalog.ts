/**
 * Table shapes in the connection's current schema, the same way on every engine. Used where a
 * pipeline keeps a table it did not necessarily create this run: a cdc target whose source grew a
 * column, an SCD2 work table made by an older version of the pipeline.
 */
import type { SqlEngine } from './types.ts';

/** How information_schema spells a name our pipelines write with `ident(name)` (Snowflake: upper case). */
export const catalogName = (db: SqlEngine, name: string): string => db.dialect.catalogName?.(name) ?? name;

/**
 * The columns `table` has in the current schema, by the names our pipelines write (empty: no such
 * table — except with `Dialect.showColumns` (Spark), where a missing table is an error).
 */
export async function storedColumns(db: SqlEngine, table: string, names: readonly string[]): Promise<Set<string>> {
  const show = db.dialect.showColumns;
  const rows = show
    ? (await db.query<{ col_name: string }>(show(table))).map((r) => r.col_name)
    : (
        await db.query<{ column_name: string }>(
          `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1`,
          [catalogName(db, table)],
        )
      ).map((r) => r.column_name);
  const stored = new Set(rows);
  return new Set(names.filter((n) => stored.has(catalogName(db, n))));
}

/** A column to ensure: its name and its SQL type (with any constraint, e.g. `BIGINT NOT NULL`). */
export interface ColumnDef {
  name: string;
  type: string;
}

/**
 * Creates `table` if it is missing, then adds each of `columns` it lacks (in the order given).
 * Returns the names added. DDL: call it outside a transaction (Snowflake commits one on DDL).
 * A column added to a table with rows reads NULL in them, so only nullable columns can be added late.
 */
export async function ensureColumns(db: SqlEngine, table: string, columns: readonly ColumnDef[]): Promise<string[]> {
  const q = (n: string) => db.dialect.ident(n);
  await db.exec(`CREATE TABLE IF NOT EXISTS ${q(table)} (${columns.map((c) => `${q(c.name)} ${c.type}`).join(', ')})`);
  const have = await storedColumns(db, table, columns.map((c) => c.name));
  const added: string[] = [];
  for (const c of columns) {
    if (have.has(c.name)) continue;
    await db.exec(`ALTER TABLE ${q(table)} ADD COLUMN ${q(c.name)} ${c.type}`);
    added.push(c.name);
  }
  return added;
}
