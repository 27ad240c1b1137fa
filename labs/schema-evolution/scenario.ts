/**
 * Runs a file loader over the seeded drops on a real engine and collects what the claims judge:
 * what each load returned (or threw), the fingerprint of the rows already in the table before and
 * after each load, the final table (every value as text, a struct field as `col.field`), its
 * columns, the contract history, the load log, and one "which schema was this row loaded under"
 * lookup per landed file.
 */
import type { SqlEngine } from '../../pipelines/engines/types.ts';
import type { CanonicalKind } from '../../pipelines/engines/types.ts';
import { fingerprintSql } from '../../pipelines/engines/sql-common.ts';
import { createLake, currentContract, loadDropFile, tableColumns, type DropFile, type LakeTables, type LoadOutcome } from '../../pipelines/schema-evolution/loader.ts';
import { checkCompatibility } from '../../pipelines/schema-evolution/compat.ts';
import { lakeDialect } from '../../pipelines/schema-evolution/lake-dialect.ts';
import { parseType, typeName, type Column, type ColumnType } from '../../pipelines/schema-evolution/types.ts';
import type { DropSpec } from '../../fixtures/schema-evolution.ts';
import type { ProduceFn } from './events.ts';
import { gatedApply, type CdcApplyFn } from '../../pipelines/schema-evolution/cdc-source.ts';

/**
 * What a candidate provides: load one dropped file (earlier drops in `history`, oldest first), and
 * optionally how events are produced under a writer schema (default: register with the registry first).
 */
export interface SchemaEvolutionImpl {
  loadFile(db: SqlEngine, file: DropFile, tables: LakeTables, history: readonly DropFile[], reader: SqlEngine): Promise<LoadOutcome>;
  produce?: ProduceFn;
  /** How the CDC source's change events are applied to the target (default: held against the contract by the same check). */
  applyChanges?: CdcApplyFn;
}

export const referenceImpl: SchemaEvolutionImpl = {
  loadFile: (db, file, tables, _history, reader) => loadDropFile(db, file, tables, checkCompatibility, reader),
  applyChanges: gatedApply(checkCompatibility),
};

export const LAKE_TABLES: LakeTables = { table: 'orders', contract: 'orders_contract', log: 'orders_load_log' };

export interface Fingerprint {
  rows: number;
  checksum: string;
}

export interface FileRun {
  file: string;
  outcome?: LoadOutcome;
  /** The loader threw (first line). */
  threw?: string;
  /** Rows already in the table, over the columns it had, before and after this load. */
  before: Fingerprint;
  after: Fingerprint;
}

export interface ContractRow {
  version: number;
  effective_date: string;
  effective_file: string;
  columns: string;
  changes: string;
}

export interface LogRow {
  seq: number;
  file: string;
  status: string;
  rows: number;
  contract_version: number | null;
  error: string | null;
}

/** One landed row: load metadata and each value as text (`col.field` for struct fields). */
export interface TargetRow {
  /** The file it came from (through the load log). */
  _file: string;
  _contract_version: number | null;
  values: Record<string, string | null>;
}

/** "Which schema was order X loaded under": the row joined to the contract version it names. */
export interface HistoryLookup {
  file: string;
  order_id: string;
  version: number | null;
  effective_date: string | null;
  columns: string | null;
}

export interface ScenarioEvidence {
  plan: DropSpec[];
  runs: FileRun[];
  /** The table's columns at the end, as stored (name, type). */
  columns: { name: string; type: string }[];
  /** A producer's type (DuckDB spelling) → how this target stores it. */
  spelling: Record<string, string>;
  rows: TargetRow[];
  contract: ContractRow[];
  log: LogRow[];
  lookups: HistoryLookup[];
}

function kindOf(t: ColumnType): CanonicalKind {
  switch (t.kind) {
    case 'int':
      return 'int';
    case 'decimal':
      return 'decimal';
    case 'double':
      return 'double';
    case 'bool':
      return 'bool';
    case 'date':
      return 'date';
    default:
      return 'text';
  }
}

/** Scalar leaves of the columns: a struct expands to its fields, recursively. */
function leaves(db: SqlEngine, cols: readonly Column[], qualifier = '', base?: { expr: string; path: string }): { path: string; expr: string; type: ColumnType }[] {
  return cols.flatMap((c) => {
    const expr = base ? lakeDialect(db).structField(base.expr, c.name) : qualifier + db.dialect.ident(c.name);
    const path = base ? `${base.path}.${c.name}` : c.name;
    return c.type.kind === 'struct' ? leaves(db, c.type.fields, qualifier, { expr, path }) : [{ path, expr, type: c.type }];
  });
}

async function tableExists(db: SqlEngine, table: string): Promise<boolean> {
  const rows = await db.query(`SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`, [table]);
  return rows.length > 0;
}

/**
 * The table's columns with their shape: where the target stores a struct the contract declares
 * as something else (PostgreSQL: JSONB), the contract's struct type, so its fields can be read.
 */
async function shapedColumns(db: SqlEngine, tables: LakeTables): Promise<Column[]> {
  const cols = await tableColumns(db, tables.table);
  const contract = (await currentContract(db, tables))?.columns ?? [];
  return cols.map((c) => {
    const k = contract.find((x) => x.name === c.name);
    return k && k.type.kind === 'struct' && c.type.kind !== 'struct' && lakeDialect(db).sqlType(k.type).toUpperCase() === typeName(c.type) ? { name: c.name, type: k.type } : c;
  });
}

/** The scalar leaf paths of the table's columns now (`ship.city` for a struct field). */
async function leafPaths(db: SqlEngine, table: LakeTables): Promise<string[]> {
  if (!(await tableExists(db, table.table))) return [];
  return leaves(db, await shapedColumns(db, table)).map((l) => l.path);
}

/**
 * The order-independent fingerprint of the table's rows (except `exceptFile`'s) over the leaf
 * columns `paths`, each hashed by the kind of the type it has now: a value cast to another kind
 * (INTEGER → VARCHAR) no longer hashes the same, a widened one (INTEGER → BIGINT,
 * DECIMAL(10,2) → (12,2), a struct that gained a field) does.
 */
async function fingerprint(db: SqlEngine, tables: LakeTables, paths: readonly string[], exceptFile?: string): Promise<Fingerprint> {
  const { table, log } = tables;
  if (paths.length === 0 || !(await tableExists(db, table))) return { rows: 0, checksum: '0' };
  const now = leaves(db, await shapedColumns(db, tables));
  const gone = paths.filter((p) => !now.some((l) => l.path === p));
  if (gone.length) return { rows: -1, checksum: `columns gone: ${gone.join(', ')}` };
  const cols = paths.map((p) => now.find((l) => l.path === p)!).map((l) => ({ expr: l.expr, kind: kindOf(l.type) }));
  const where = exceptFile === undefined ? '' : ` WHERE _load_id NOT IN (SELECT seq FROM ${db.dialect.ident(log)} WHERE file = $1)`;
  const [r] = await db.query<{ rows: number; checksum: string }>(fingerprintSql(db.dialect, `${db.dialect.ident(table)}${where}`, cols), exceptFile === undefined ? [] : [exceptFile]);
  return { rows: Number(r!.rows), checksum: String(r!.checksum) };
}

const firstLine = (e: unknown) => String((e as Error)?.message ?? e).split('\n')[0]!;

/** Loads every drop in order with `impl` into an empty database, then reads back the evidence. */
export async function runScenario(db: SqlEngine, impl: SchemaEvolutionImpl, plan: DropSpec[], files: DropFile[], reader: SqlEngine = db, tables: LakeTables = LAKE_TABLES): Promise<ScenarioEvidence> {
  const { ident } = db.dialect;
  await createLake(db, tables);
  const runs: FileRun[] = [];
  for (const [i, file] of files.entries()) {
    const existing = await leafPaths(db, tables);
    const before = await fingerprint(db, tables, existing);
    const run: FileRun = { file: file.name, before, after: before };
    try {
      run.outcome = await impl.loadFile(db, file, tables, files.slice(0, i), reader);
    } catch (err) {
      run.threw = firstLine(err);
    }
    run.after = await fingerprint(db, tables, existing, file.name);
    runs.push(run);
  }

  const hasTable = await tableExists(db, tables.table);
  const finalCols = hasTable ? await shapedColumns(db, tables) : [];
  const stored = hasTable ? await tableColumns(db, tables.table) : [];
  const data = finalCols.filter((c) => !c.name.startsWith('_'));
  const leafCols = leaves(db, data, 't.');
  const rows: TargetRow[] = [];
  if (hasTable) {
    const select = leafCols.map((l, i) => `CAST(${l.expr} AS VARCHAR) AS ${ident(`v${i}`)}`);
    const raw = await db.query<Record<string, unknown>>(
      `SELECT l.file AS _file, t._contract_version${select.length ? ', ' + select.join(', ') : ''}
       FROM ${ident(tables.table)} AS t LEFT JOIN ${ident(tables.log)} AS l ON l.seq = t._load_id`,
    );
    for (const r of raw) {
      const values: Record<string, string | null> = {};
      leafCols.forEach((l, i) => (values[l.path] = r[`v${i}`] === null ? null : String(r[`v${i}`])));
      rows.push({ _file: String(r._file), _contract_version: r._contract_version === null ? null : Number(r._contract_version), values });
    }
  }
  const contract = (await db.query<ContractRow>(`SELECT version, CAST(effective_date AS VARCHAR) AS effective_date, effective_file, columns, changes FROM ${ident(tables.contract)} ORDER BY version`)).map((c) => ({ ...c, version: Number(c.version) }));
  const log = (await db.query<LogRow>(`SELECT seq, file, status, rows, contract_version, error FROM ${ident(tables.log)} ORDER BY seq`)).map((l) => ({
    ...l,
    seq: Number(l.seq),
    rows: Number(l.rows),
    contract_version: l.contract_version === null ? null : Number(l.contract_version),
  }));

  // The history query a reader runs: the first order of each landed file, joined to its contract version.
  const lookups: HistoryLookup[] = [];
  if (hasTable && data.some((c) => c.name === 'order_id')) {
    for (const spec of plan) {
      const [r] = await db.query<{ order_id: string; version: number | null; effective_date: string | null; columns: string | null }>(
        `SELECT CAST(t.order_id AS VARCHAR) AS order_id, c.version, CAST(c.effective_date AS VARCHAR) AS effective_date, c.columns
         FROM ${ident(tables.table)} AS t
         JOIN ${ident(tables.log)} AS l ON l.seq = t._load_id
         LEFT JOIN ${ident(tables.contract)} AS c ON c.version = t._contract_version
         WHERE l.file = $1 ORDER BY t.order_id LIMIT 1`,
        [spec.name],
      );
      if (r) lookups.push({ file: spec.name, order_id: r.order_id, version: r.version === null ? null : Number(r.version), effective_date: r.effective_date, columns: r.columns });
    }
  }
  // How this target spells each type the producers sent (PostgreSQL: a struct is JSONB).
  const spelling: Record<string, string> = {};
  for (const spec of plan) for (const c of spec.columns) spelling[c.type] = typeName(parseType(lakeDialect(db).sqlType(parseType(c.type))));
  return { plan, runs, columns: stored.map((c) => ({ name: c.name, type: typeName(c.type) })), spelling, rows, contract, log, lookups };
}
