/**
 * Files → lake table, with a contract. For each dropped file: read its schema, compare it with the
 * table's contract (compat.ts), then either stop it (quarantine: one line naming file, column, old
 * and new type) or, in ONE transaction, evolve the table (ADD COLUMN / ALTER TYPE), record the new
 * contract version, insert the file's rows BY NAME with the file and version they loaded under,
 * and log the load. A failure anywhere leaves table, contract and log as they were.
 *
 * The target reads the files itself (DuckDB: read_parquet / read_json / read_csv).
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
import { parseType, sameType, schemaText, typeName, type Column } from './types.ts';

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

/** The contract version in effect (null: no file has landed yet, the table does not exist). */
export async function currentContract(db: SqlEngine, tables: LakeTables): Promise<{ version: number; columns: Column[] } | null> {
  const { ident } = db.dialect;
  const [v] = await db.query<{ version: number }>(`SELECT max(version) AS version FROM ${ident(tables.contract)}`);
  if (v?.version === null || v?.version === undefined) return null;
  const columns = await tableColumns(db, tables.table);
  return { version: Number(v.version), columns: columns.filter((c) => !(META_COLUMNS as readonly string[]).includes(c.name)) };
}

/** A table's columns and types, in table order. */
export async function tableColumns(db: SqlEngine, table: string): Promise<Column[]> {
  const rows = await db.query<{ column_name: string; column_type: string }>(`DESCRIBE ${db.dialect.ident(table)}`);
  return rows.map((r) => ({ name: r.column_name, type: parseType(r.column_type) }));
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
  const q = ident(table);
  if (!current) {
    const cols = [`_load_id ${t.int} NOT NULL`, `_contract_version ${t.int} NOT NULL`, ...next.map((c) => `${ident(c.name)} ${typeName(c.type)}`)];
    await tx.exec(`CREATE TABLE ${q} (${cols.join(', ')})`);
    return;
  }
  const have = new Map(current.map((c) => [c.name, c.type]));
  const missing = current.filter((c) => !next.some((n) => n.name === c.name));
  if (missing.length) throw new Error(`the contract may not drop columns (${missing.map((c) => c.name).join(', ')})`);
  for (const c of next) {
    const old = have.get(c.name);
    if (!old) await tx.exec(`ALTER TABLE ${q} ADD COLUMN ${ident(c.name)} ${typeName(c.type)}`);
    else if (!sameType(old, c.type)) await tx.exec(`ALTER TABLE ${q} ALTER COLUMN ${ident(c.name)} TYPE ${typeName(c.type)}`);
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

/**
 * Inserts the file's rows by name: an explicit column list on both sides, each value cast to its
 * contract column's type (lossless: the check made the contract hold the file's type). Columns of
 * the contract the file does not have are left NULL — the check lets that through only for none.
 */
export async function insertByName(tx: SqlEngine, table: string, file: DropFile, columns: readonly Column[], contract: readonly Column[], load: { id: number; version: number }): Promise<number> {
  const { ident } = tx.dialect;
  const types = new Map(contract.map((c) => [c.name, c.type]));
  const names = columns.map((c) => ident(c.name));
  const values = columns.map((c) => `CAST(${ident(c.name)} AS ${typeName(types.get(c.name) ?? c.type)})`);
  await tx.exec(
    `INSERT INTO ${ident(table)} (_load_id, _contract_version, ${names.join(', ')}) SELECT $1, $2, ${values.join(', ')} FROM ${fileScan(file)}`,
    [load.id, load.version],
  );
  // The file's row count (Parquet: from its footer), not a scan of the growing table.
  const [n] = await tx.query<{ n: number }>(`SELECT count(*) AS n FROM ${fileScan(file)}`);
  return Number(n!.n);
}

/** Loads one dropped file under the contract, or quarantines it (see the module comment). */
export async function loadDropFile(db: SqlEngine, file: DropFile, tables: LakeTables, check: CompatibilityCheck = checkCompatibility): Promise<LoadOutcome> {
  const current = await currentContract(db, tables);
  const incoming = await readFileSchema(db, file, current?.columns ?? null);
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
    const rows = await insertByName(tx, tables.table, file, incoming, verdict.contract, { id: loadId, version });
    const outcome: LoadOutcome = { file: file.name, status: 'landed', loadId, rows, version, changes: verdict.changes };
    await logLoad(tx, tables, file, outcome);
    return outcome;
  });
}
