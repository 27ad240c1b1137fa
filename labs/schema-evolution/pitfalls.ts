/**
 * The drift handling interview answers commonly give, each with one defect. The lab runs them
 * through the same claim checks as the reference loader; each must be rejected by at least one.
 */
import type { Pitfall } from '../contract.ts';
import { sendFramed } from '../../pipelines/schema-evolution/registry.ts';
import type { SqlEngine } from '../../pipelines/engines/types.ts';
import { nameLiteral } from '../../pipelines/engines/sql-common.ts';
import {
  currentContract,
  evolveTable,
  fileScan,
  loadDropFile,
  logLoad,
  nextLoadId,
  readFileSchema,
  recordContractVersion,
  type DropFile,
  type LakeTables,
  type LoadOutcome,
} from '../../pipelines/schema-evolution/loader.ts';
import { checkCompatibility } from '../../pipelines/schema-evolution/compat.ts';
import { sameType, schemaText, typeName, type Column } from '../../pipelines/schema-evolution/types.ts';
import type { SchemaEvolutionImpl } from './scenario.ts';

/**
 * The reference's check and DDL, then `INSERT INTO t SELECT …, * FROM read_…(file)`: values go to
 * the table's columns by position. Any file whose columns come in another order either fails on
 * a type (a CSV whose first column is text) or — same types in swapped places — loads silently
 * into the wrong columns.
 */
const positionalSelectStar: SchemaEvolutionImpl = {
  async loadFile(db, file, tables) {
    const current = await currentContract(db, tables);
    const incoming = await readFileSchema(db, file, current?.columns ?? null);
    const verdict = current ? checkCompatibility(current.columns, incoming) : { compatible: true as const, contract: incoming, changes: ['create'] };
    if (!verdict.compatible) return loadDropFile(db, file, tables);
    return db.transaction(async (tx) => {
      const version = (current?.version ?? 0) + (!current || verdict.changes.length ? 1 : 0);
      if (!current || verdict.changes.length) {
        await evolveTable(tx, tables.table, current?.columns ?? null, verdict.contract);
        await recordContractVersion(tx, tables, version, file, verdict.contract, verdict.changes);
      }
      const loadId = await nextLoadId(tx, tables);
      await tx.exec(`INSERT INTO ${tx.dialect.ident(tables.table)} SELECT $1, $2, * FROM ${fileScan(file)}`, [loadId, version]);
      const outcome: LoadOutcome = { file: file.name, status: 'landed', loadId, rows: await countFile(tx, file), version };
      await logLoad(tx, tables, file, outcome);
      return outcome;
    });
  },
};

async function countFile(db: SqlEngine, file: DropFile): Promise<number> {
  const [n] = await db.query<{ n: number }>(`SELECT count(*) AS n FROM ${fileScan(file)}`);
  return Number(n!.n);
}

/**
 * The seed's `handle_schema_evolution`: new columns are added as NULL; a removed column gets a
 * warning and the load goes on (its rows NULL); a type change gets a warning and the value is
 * cast to the table's type as it stands (TRY_CAST: what does not fit becomes NULL, what has more
 * digits is rounded). Nothing is ever stopped.
 */
const warnAndContinue: SchemaEvolutionImpl = {
  async loadFile(db, file, tables) {
    const current = await currentContract(db, tables);
    if (!current) return loadDropFile(db, file, tables);
    const incoming = await readFileSchema(db, file, current.columns);
    const have = new Map(current.columns.map((c) => [c.name, c.type]));
    const added = incoming.filter((c) => !have.has(c.name));
    const warnings = [
      ...current.columns.filter((c) => !incoming.some((i) => i.name === c.name)).map((c) => `column removed: ${c.name}`),
      ...incoming.filter((c) => have.has(c.name) && !sameType(have.get(c.name)!, c.type)).map((c) => `type change: ${c.name} ${typeName(have.get(c.name)!)} -> ${typeName(c.type)}`),
    ];
    const contract: Column[] = [...current.columns, ...added];
    return db.transaction(async (tx) => {
      const version = current.version + (added.length ? 1 : 0);
      if (added.length) {
        await evolveTable(tx, tables.table, current.columns, contract);
        await recordContractVersion(tx, tables, version, file, contract, added.map((a) => `add ${a.name} ${typeName(a.type)}`));
      }
      const { ident } = tx.dialect;
      const types = new Map(contract.map((c) => [c.name, c.type]));
      const loadId = await nextLoadId(tx, tables);
      await tx.exec(
        `INSERT INTO ${ident(tables.table)} (_load_id, _contract_version, ${incoming.map((c) => ident(c.name)).join(', ')})
         SELECT $1, $2, ${incoming.map((c) => `TRY_CAST(${ident(c.name)} AS ${typeName(types.get(c.name)!)})`).join(', ')} FROM ${fileScan(file)}`,
        [loadId, version],
      );
      // logging.warning(...) and carry on: the warnings go to the log, the rows to the table.
      const outcome: LoadOutcome = { file: file.name, status: 'landed', loadId, rows: await countFile(tx, file), version, ...(warnings.length ? { error: `WARNING ${warnings.join('; ')}` } : {}) };
      await logLoad(tx, tables, file, outcome);
      return outcome;
    });
  },
};

/**
 * On any type mismatch, make the column VARCHAR and load the file as text: nothing is stopped and
 * nothing fails to parse — and `amount` is now a string (12.50 sorts before 9.99, SUM needs a
 * cast that breaks on the first 'n/a'), the rows already loaded rewritten with it.
 */
const castToString: SchemaEvolutionImpl = {
  loadFile: (db, file, tables) =>
    loadDropFile(db, file, tables, (contract, incoming) => {
      const mismatched = new Set(incoming.filter((i) => contract.some((c) => c.name === i.name && !sameType(c.type, i.type))).map((i) => i.name));
      const asText = (cols: readonly Column[]) => cols.map((c) => (mismatched.has(c.name) ? { name: c.name, type: { kind: 'text' as const } } : c));
      const verdict = checkCompatibility(asText(contract), asText(incoming));
      if (!verdict.compatible) return verdict;
      return { ...verdict, changes: [...[...mismatched].map((n) => `${n} → VARCHAR`), ...verdict.changes] };
    }),
};

/**
 * Every day, rebuild the table from all files so far, read together and combined with
 * `UNION ALL BY NAME` (Parquet with union_by_name): columns line up by name, but where two files
 * disagree on a type DuckDB promotes silently — DECIMAL with a JSON DOUBLE becomes DOUBLE, INTEGER
 * with VARCHAR becomes VARCHAR — and a removed or renamed column just leaves NULLs.
 */
const unionByName: SchemaEvolutionImpl = {
  async loadFile(db, file, tables, history) {
    const all = [...history, file];
    const { ident } = db.dialect;
    const byFormat = (f: DropFile['format']) => all.filter((x) => x.format === f).map((x) => nameLiteral(x.path));
    const reads = [
      byFormat('parquet').length ? `SELECT * FROM read_parquet([${byFormat('parquet').join(', ')}], union_by_name = true, filename = true)` : null,
      byFormat('json').length ? `SELECT * FROM read_json([${byFormat('json').join(', ')}], format = 'newline_delimited', union_by_name = true, filename = true)` : null,
      byFormat('csv').length ? `SELECT * FROM read_csv([${byFormat('csv').join(', ')}], header = true, union_by_name = true, filename = true)` : null,
    ].filter(Boolean);
    return db.transaction(async (tx) => {
      // File k of the drops is load k: this loader logs one row per file.
      await tx.exec(
        `CREATE OR REPLACE TABLE ${ident(tables.table)} AS
         SELECT list_position([${all.map((f) => nameLiteral(f.name)).join(', ')}], regexp_extract(filename, '[^/]+$')) AS _load_id, 1 AS _contract_version, * EXCLUDE (filename)
         FROM (${reads.join(' UNION ALL BY NAME ')})`,
      );
      const version = 1;
      const [known] = await tx.query<{ n: number }>(`SELECT count(*) AS n FROM ${ident(tables.contract)}`);
      if (Number(known!.n) === 0) {
        const cols = await readFileSchema(tx, file, null);
        await recordContractVersion(tx, tables, version, file, cols, [`create ${schemaText(cols)}`]);
      }
      const outcome: LoadOutcome = { file: file.name, status: 'landed', loadId: all.length, rows: await countFile(tx, file), version };
      await logLoad(tx, tables, file, outcome);
      return outcome;
    });
  },
};

/**
 * The producer registers its schema without the compatibility check (auto-register on a subject
 * left at NONE, or a client that skips the check "because the registry is slow"): every schema gets
 * an id and its messages are framed correctly — and a breaking one reaches every consumer, whose
 * reader schema cannot resolve it: the v1 consumer fails on the messages without `status`, and on
 * those whose amount is a string.
 */
const produceWithoutRegistryCheck: SchemaEvolutionImpl = {
  loadFile: (db, file, tables) => loadDropFile(db, file, tables),
  async produce(kafka, registry, topic, schema, records) {
    const id = registry.register(`${topic}-value`, schema, { check: false });
    await sendFramed(kafka, topic, id, schema, records);
    return id;
  },
};

export const schemaEvolutionPitfalls: Pitfall<SchemaEvolutionImpl>[] = [
  {
    name: 'positional-select-star',
    title: 'INSERT INTO t SELECT * FROM read_parquet(file): columns matched by position',
    description:
      'Short and fast, and right as long as every file lists its columns in the table\'s order. A producer that reorders ' +
      'columns of the same type (customer_id ↔ quantity) loads without an error, every value in the wrong column; a CSV ' +
      'with its header reordered fails on the first text value in a number column.',
    impl: positionalSelectStar,
  },
  {
    name: 'warn-and-continue',
    title: 'log a warning on removed columns and type changes, and load anyway',
    description:
      'The seed answer\'s handle_schema_evolution: add new columns as NULL, logging.warning on a removed column or a type ' +
      'change, carry on. The removed column is NULL for that day, a BIGINT id that does not fit INTEGER becomes NULL, a ' +
      'DECIMAL(12,4) discount is rounded to 2 places, and nobody reads the warnings.',
    impl: warnAndContinue,
  },
  {
    name: 'cast-to-string',
    title: 'on a type mismatch, make the column VARCHAR and load everything as text',
    description:
      'Nothing is ever rejected, nothing fails to parse: the widened id, amount, discount and the nested ship all become ' +
      'strings, the rows already loaded with them. Sums, sorts and joins on those columns now need casts, and the first ' +
      "'n/a' that lands breaks them.",
    impl: castToString,
  },
  {
    name: 'union-by-name-promotion',
    title: 'read all files with union_by_name / UNION ALL BY NAME and let the engine pick the types',
    description:
      'Columns do line up by name, but the engine resolves every type conflict by promotion, silently: the JSON file makes ' +
      'amount DOUBLE, the VARCHAR quantity makes quantity VARCHAR for every day, the renamed column becomes a second column ' +
      'and the removed one a day of NULLs. No file is ever stopped.',
    impl: unionByName,
  },
  {
    name: 'produce-without-registry-check',
    title: 'registers every schema without the compatibility check (subject at NONE), then produces',
    description:
      'The registry is used as a lookup of ids, not as a gate: auto-register on a subject left at compatibility NONE. Every ' +
      'schema gets in, so removing a field without a default or changing its type reaches the consumers, whose reader ' +
      'schemas cannot resolve those messages: they fail on them (or skip them, and the data is lost to them).',
    impl: produceWithoutRegistryCheck,
  },
];
