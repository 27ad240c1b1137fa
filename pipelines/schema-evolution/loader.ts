/**
 * Files → lake table, with a contract. For each dropped file: read its schema, compare it with the
 * table's contract (compat.ts), then either stop it (quarantine: one line naming file, column, old
 * and new type) or, in ONE transaction, evolve the table (ADD COLUMN / ALTER TYPE), record the new
 * contract version, insert the file's rows BY NAME with the file and version they loaded under,
 * and log the load. A failure anywhere leaves table, contract and log as they were.
 *
 * The files are read by DuckDB (read_parquet / read_json / read_csv): the target itself when it is
 * DuckDB, else a DuckDB `reader` whose rows go into the target through the engine layer
 * (`insertRows`); what differs per target is in lake-dialect.ts.
 *
 * Tables (names in `LakeTables`):
 *   <table>     _load_id (the load log's seq: file, date), _contract_version, then the contract's
 *               columns in contract order (two integers per row: cheaper to write than the file name)
 *   <contract>  version, effective_date, effective_file, columns (`name TYPE, …`), changes, recorded_at
 *   <log>       seq, file, drop_date, status (landed | quarantined), rows, contract_version, error
 */
import type { SqlEngine } from '../engines/types.ts';
import { nameLiteral } from '../engines/sql-common.ts';
import { checkCompatibility, quarantineLine, type Compatibility } from './compat.ts';
import { parseSchemaText, parseType, sameType, schemaText, typeName, type Column, type ColumnType } from './types.ts';
import { lakeDialect } from './lake-dialect.ts';

export type FileFormat = 'parquet' | 'json' | 'csv';

/** One file of a daily drop. */
export interface DropFile {
  /** File name, as error lines and the load log show it. */
  name: string;
  path: string;
  format: FileFormat;
  /** The drop's date, 'YYYY-MM-DD': when a contract version it creates takes effect. */
  date: string;
}

export interface LakeTables {
  table: string;
  contract: string;
  log: string;
}

export interface LoadOutcome {
  file: string;
  status: 'landed' | 'quarantined';
  rows: number;
  /** The load log's seq for this load; each landed row carries it as `_load_id`. */
  loadId: number;
  /** Contract version the rows were loaded under (null: quarantined). */
  version: number | null;
  /** Quarantined: the one line saying why. */
  error?: string;
  /** Landed: what the file changed in the contract (empty: nothing). */
  changes?: string[];
}

/** The check a loader runs: the reference is `checkCompatibility`; the exercise asks for one. */
export type CompatibilityCheck = (contract: readonly Column[], incoming: readonly Column[]) => Compatibility;

export const META_COLUMNS = ['_load_id', '_contract_version'] as const;

/** The table function that reads a file, by format (the header names a CSV's columns). */
export function fileScan(file: Pick<DropFile, 'path' | 'format'>): string {
  const p = nameLiteral(file.path);
  switch (file.format) {
    case 'parquet':
      return `read_parquet(${p})`;
    case 'json':
      return `read_json(${p}, format = 'newline_delimited')`;
    case 'csv':
      return `read_csv(${p}, header = true)`;
  }
}

/** The schema a file declares (Parquet), or DuckDB infers from its values (JSON, CSV), in file order. */
export async function describeFile(db: SqlEngine, file: Pick<DropFile, 'path' | 'format'>): Promise<Column[]> {
  const rows = await db.query<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM ${fileScan(file)}`);
  return rows.map((r) => ({ name: r.column_name, type: parseType(r.column_type) }));
}

/**
 * A file's schema as the check should see it. JSON and CSV carry no types: DuckDB infers BIGINT
 * for every whole number and DOUBLE for every fraction. Where the contract has an exact numeric
 * column, the file's column is taken at the contract's type when every one of its values survives
 * the cast unchanged (12.5 read as DOUBLE is DECIMAL(10,2) 12.50); otherwise the inferred type
 * stands and the check judges it (a value beyond INTEGER → a widening to BIGINT; 19.999 against
 * DECIMAL(12,2) → no lossless type, quarantined). Parquet declares its types: taken as they are.
 */
export async function readFileSchema(db: SqlEngine, file: DropFile, contract: readonly Column[] | null): Promise<Column[]> {
  const described = await describeFile(db, file);
  if (file.format === 'parquet' || !contract) return described;
  const want = new Map(contract.map((c) => [c.name, c.type]));
  const candidates = described.filter((c) => {
    const t = want.get(c.name);
    return t && (t.kind === 'int' || t.kind === 'decimal') && (c.type.kind === 'double' || (c.type.kind === 'int' && c.type.bits === 64)) && !sameType(t, c.type);
  });
  if (candidates.length === 0) return described;
  const { ident } = db.dialect;
  const checks = candidates.map((c, i) => {
    const col = ident(c.name);
    const t = typeName(want.get(c.name)!);
    return `count(*) FILTER (WHERE ${col} IS NOT NULL AND (TRY_CAST(${col} AS ${t}) IS NULL OR CAST(TRY_CAST(${col} AS ${t}) AS DOUBLE) <> CAST(${col} AS DOUBLE))) AS c${i}`;
  });
  const [changed] = await db.query<Record<string, number>>(`SELECT ${checks.join(', ')} FROM ${fileScan(file)}`);
  const exact = new Set(candidates.filter((_, i) => Number(changed![`c${i}`]) === 0).map((c) => c.name));
  return described.map((c) => (exact.has(c.name) ? { name: c.name, type: want.get(c.name)! } : c));
}

/** The contract version in effect, from the contract history (null: no file has landed yet, the table does not exist). */
export async function currentContract(db: SqlEngine, tables: LakeTables): Promise<{ version: number; columns: Column[] } | null> {
  const { ident } = db.dialect;
  const [v] = await db.query<{ version: number; columns: string }>(`SELECT version, columns FROM ${ident(tables.contract)} ORDER BY version DESC LIMIT 1`);
  if (!v) return null;
  return { version: Number(v.version), columns: parseSchemaText(v.columns) };
}

/**
 * A table's columns and types as stored, in table order (information_schema, on any engine:
 * PostgreSQL's `numeric` comes with its precision and scale, DuckDB spells the whole type).
 */
export async function tableColumns(db: SqlEngine, table: string): Promise<Column[]> {
  const rows = await db.query<{ column_name: string; data_type: string; numeric_precision: number | null; numeric_scale: number | null }>(
    `SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns
     WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`,
    [table],
  );
  return rows.map((r) => ({
    name: r.column_name,
    type: /^numeric$/i.test(r.data_type) && r.numeric_precision !== null ? { kind: 'decimal', precision: Number(r.numeric_precision), scale: Number(r.numeric_scale ?? 0) } : parseType(r.data_type),
  }));
}

/** Creates the contract history and the load log (the data table is created by the first file). */
export async function createLake(db: SqlEngine, tables: LakeTables): Promise<void> {
  const { ident, types: t } = db.dialect;
  await db.exec(`
    CREATE TABLE ${ident(tables.contract)} (
      version ${t.int} NOT NULL PRIMARY KEY, effective_date ${t.date} NOT NULL, effective_file ${t.text} NOT NULL,
      columns ${t.text} NOT NULL, changes ${t.text} NOT NULL, recorded_at ${t.timestamp} NOT NULL
    )`);
  await db.exec(`
    CREATE TABLE ${ident(tables.log)} (
      seq ${t.int} NOT NULL, file ${t.text} NOT NULL, drop_date ${t.date} NOT NULL, status ${t.text} NOT NULL,
      rows ${t.bigint} NOT NULL, contract_version ${t.int}, error ${t.text}
    )`);
}

/**
 * Brings the table to `next` (DDL inside the caller's transaction): creates it on the first file,
 * adds the columns `next` has and the table lacks, alters the types `next` widened. Refuses to drop
 * or narrow: a check that asks for it is wrong.
 */
export async function evolveTable(tx: SqlEngine, table: string, current: readonly Column[] | null, next: readonly Column[]): Promise<void> {
  const { ident, types: t } = tx.dialect;
  const { sqlType } = lakeDialect(tx);
  const q = ident(table);
  if (!current) {
    const cols = [`_load_id ${t.int} NOT NULL`, `_contract_version ${t.int} NOT NULL`, ...next.map((c) => `${ident(c.name)} ${sqlType(c.type)}`)];
    await tx.exec(`CREATE TABLE ${q} (${cols.join(', ')})`);
    return;
  }
  const have = new Map(current.map((c) => [c.name, c.type]));
  const missing = current.filter((c) => !next.some((n) => n.name === c.name));
  if (missing.length) throw new Error(`the contract may not drop columns (${missing.map((c) => c.name).join(', ')})`);
  for (const c of next) {
    const old = have.get(c.name);
    // A widening the target spells the same (a struct gaining a field, stored as JSONB) needs no DDL.
    if (!old) await tx.exec(`ALTER TABLE ${q} ADD COLUMN ${ident(c.name)} ${sqlType(c.type)}`);
    else if (sqlType(old) !== sqlType(c.type)) await tx.exec(`ALTER TABLE ${q} ALTER COLUMN ${ident(c.name)} TYPE ${sqlType(c.type)}`);
  }
}

/** Records a contract version (inside the caller's transaction). */
export async function recordContractVersion(tx: SqlEngine, tables: LakeTables, version: number, file: DropFile, columns: readonly Column[], changes: readonly string[]): Promise<void> {
  await tx.exec(
    `INSERT INTO ${tx.dialect.ident(tables.contract)} (version, effective_date, effective_file, columns, changes, recorded_at)
     VALUES ($1, ${tx.dialect.dateParam('$2')}, $3, $4, $5, CURRENT_TIMESTAMP)`,
    [version, file.date, file.name, schemaText(columns), changes.join('; ')],
  );
}

/** The next load's id (the log's next seq); read inside the load's transaction. */
export async function nextLoadId(db: SqlEngine, tables: LakeTables): Promise<number> {
  const [r] = await db.query<{ id: number }>(`SELECT COALESCE(max(seq), 0) + 1 AS id FROM ${db.dialect.ident(tables.log)}`);
  return Number(r!.id);
}

/** Appends the load's row to the load log (inside the load's transaction, or alone for a quarantine). */
export async function logLoad(db: SqlEngine, tables: LakeTables, file: DropFile, outcome: LoadOutcome): Promise<void> {
  await db.exec(
    `INSERT INTO ${db.dialect.ident(tables.log)} (seq, file, drop_date, status, rows, contract_version, error)
     VALUES ($1, $2, ${db.dialect.dateParam('$3')}, $4, $5, $6, $7)`,
    [outcome.loadId, file.name, file.date, outcome.status, outcome.rows, outcome.version, outcome.error ?? null],
  );
}

/** A column to insert: its name in the table, the reader's expression for it, and the type it has there. */
export interface SelectedColumn {
  name: string;
  expr: string;
  type: ColumnType;
}

/**
 * Inserts `SELECT exprs FROM from` (run by DuckDB) into `table`, each row with its load id and
 * contract version. A target that reads files runs it as one INSERT … SELECT; otherwise the reader
 * runs the SELECT, each value as text (a struct as JSON), and the rows go through `insertRows`.
 */
export async function insertSelected(
  tx: SqlEngine,
  reader: SqlEngine,
  table: string,
  from: string,
  cols: readonly SelectedColumn[],
  load: { id: number | { expr: string }; version: number },
): Promise<void> {
  const { ident } = tx.dialect;
  const lake = lakeDialect(tx);
  const names = ['_load_id', '_contract_version', ...cols.map((c) => c.name)];
  // The load id is one number, or (a loader that rebuilds from many files) an expression per row.
  const idExpr = typeof load.id === 'number' ? null : load.id.expr;
  if (lake.readsFiles) {
    const params = idExpr ? [load.version] : [load.id as number, load.version];
    const head = idExpr ? `${idExpr}, $1` : '$1, $2';
    await tx.exec(`INSERT INTO ${ident(table)} (${names.map(ident).join(', ')}) SELECT ${head}, ${cols.map((c) => c.expr).join(', ')} FROM ${from}`, params);
    return;
  }
  const text = cols.map((c, i) => `${c.type.kind === 'struct' ? lake.structValue(c.expr) : `CAST(${c.expr} AS VARCHAR)`} AS v${i}`);
  const rows = await reader.query<Record<string, unknown>>(`SELECT ${idExpr ?? 'NULL'} AS load_id, ${text.join(', ')} FROM ${from}`);
  await tx.insertRows(ident(table), names, rows.map((r) => [idExpr ? r.load_id : load.id, load.version, ...cols.map((_, i) => r[`v${i}`])]));
}

/** The file's row count (Parquet: from its footer), not a scan of the growing table. */
export async function fileRows(reader: SqlEngine, file: DropFile): Promise<number> {
  const [n] = await reader.query<{ n: number }>(`SELECT count(*) AS n FROM ${fileScan(file)}`);
  return Number(n!.n);
}

/**
 * Inserts the file's rows by name: an explicit column list on both sides, each value cast to its
 * contract column's type (lossless: the check made the contract hold the file's type). Columns of
 * the contract the file does not have are left NULL — the check lets that through only for none.
 */
export async function insertByName(tx: SqlEngine, reader: SqlEngine, table: string, file: DropFile, columns: readonly Column[], contract: readonly Column[], load: { id: number; version: number }): Promise<number> {
  const types = new Map(contract.map((c) => [c.name, c.type]));
  const cols = columns.map((c) => {
    const type = types.get(c.name) ?? c.type;
    return { name: c.name, type, expr: `CAST(${reader.dialect.ident(c.name)} AS ${typeName(type)})` };
  });
  await insertSelected(tx, reader, table, fileScan(file), cols, load);
  return fileRows(reader, file);
}

/** Loads one dropped file under the contract, or quarantines it (see the module comment). */
export async function loadDropFile(db: SqlEngine, file: DropFile, tables: LakeTables, check: CompatibilityCheck = checkCompatibility, reader: SqlEngine = db): Promise<LoadOutcome> {
  const current = await currentContract(db, tables);
  const incoming = await readFileSchema(reader, file, current?.columns ?? null);
  const verdict: Compatibility = current ? check(current.columns, incoming) : { compatible: true, contract: incoming, changes: [`create ${schemaText(incoming)}`] };
  if (!verdict.compatible) {
    const outcome: LoadOutcome = { file: file.name, status: 'quarantined', loadId: await nextLoadId(db, tables), rows: 0, version: null, error: quarantineLine(file.name, verdict.breaking) };
    await logLoad(db, tables, file, outcome);
    return outcome;
  }
  return db.transaction(async (tx) => {
    const evolves = !current || verdict.changes.length > 0;
    const version = current ? current.version + (evolves ? 1 : 0) : 1;
    if (evolves) {
      await evolveTable(tx, tables.table, current?.columns ?? null, verdict.contract);
      await recordContractVersion(tx, tables, version, file, verdict.contract, verdict.changes);
    }
    const loadId = await nextLoadId(tx, tables);
    const rows = await insertByName(tx, reader, tables.table, file, incoming, verdict.contract, { id: loadId, version });
    const outcome: LoadOutcome = { file: file.name, status: 'landed', loadId, rows, version, changes: verdict.changes };
    await logLoad(tx, tables, file, outcome);
    return outcome;
  });
}
