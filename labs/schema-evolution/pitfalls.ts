/**
 * The drift handling interview answers commonly give, each with one defect. The lab runs them
 * through the same claim checks as the reference loader; each must be rejected by at least one.
 */
import type { Pitfall } from '../contract.ts';
import { sendFramed } from '../../pipelines/schema-evolution/registry.ts';
import { nameLiteral } from '../../pipelines/engines/sql-common.ts';
import {
  currentContract,
  evolveTable,
  fileRows,
  fileScan,
  insertSelected,
  loadDropFile,
  tableColumns,
  logLoad,
  nextLoadId,
  readFileSchema,
  recordContractVersion,
  type DropFile,
  type LoadOutcome,
} from '../../pipelines/schema-evolution/loader.ts';
import { checkCompatibility } from '../../pipelines/schema-evolution/compat.ts';
import { parseType, sameType, schemaText, typeName, type Column } from '../../pipelines/schema-evolution/types.ts';
import { referenceImpl, type SchemaEvolutionImpl } from './scenario.ts';
import { lakeDialect } from '../../pipelines/schema-evolution/lake-dialect.ts';
import { gatedApply, schemaRuns } from '../../pipelines/schema-evolution/cdc-source.ts';
import { applyBatch, batchSchema, TargetSchema } from '../../pipelines/cdc/apply.ts';

/**
 * The reference's check and DDL, then `INSERT INTO t SELECT …, * FROM read_…(file)`: values go to
 * the table's columns by position. Any file whose columns come in another order either fails on
 * a type (a CSV whose first column is text) or — same types in swapped places — loads silently
 * into the wrong columns.
 */
const positionalSelectStar: SchemaEvolutionImpl = {
  async loadFile(db, file, tables, _history, reader) {
    const current = await currentContract(db, tables);
    const incoming = await readFileSchema(reader, file, current?.columns ?? null);
    const verdict = current ? checkCompatibility(current.columns, incoming) : { compatible: true as const, contract: incoming, changes: ['create'] };
    if (!verdict.compatible) return loadDropFile(db, file, tables, checkCompatibility, reader);
    return db.transaction(async (tx) => {
      const version = (current?.version ?? 0) + (!current || verdict.changes.length ? 1 : 0);
      if (!current || verdict.changes.length) {
        await evolveTable(tx, tables.table, current?.columns ?? null, verdict.contract);
        await recordContractVersion(tx, tables, version, file, verdict.contract, verdict.changes);
      }
      const loadId = await nextLoadId(tx, tables);
      const table = tx.dialect.ident(tables.table);
      if (lakeDialect(tx).readsFiles) await tx.exec(`INSERT INTO ${table} SELECT $1, $2, * FROM ${fileScan(file)}`, [loadId, version]);
      else {
        // The same on a target that cannot read the file: the file's rows, values in file order, into the table's columns in table order.
        const order = (await tableColumns(tx, tables.table)).map((c) => c.name);
        const rows = await reader.query<Record<string, unknown>>(`SELECT * FROM ${fileScan(file)}`);
        await tx.insertRows(table, order.slice(0, 2 + incoming.length), rows.map((r) => [loadId, version, ...Object.values(r)]));
      }
      const outcome: LoadOutcome = { file: file.name, status: 'landed', loadId, rows: await fileRows(reader, file), version };
      await logLoad(tx, tables, file, outcome);
      return outcome;
    });
  },
};

/**
 * The seed's `handle_schema_evolution`: new columns are added as NULL; a removed column gets a
 * warning and the load goes on (its rows NULL); a type change gets a warning and the value is
 * cast to the table's type as it stands (TRY_CAST: what does not fit becomes NULL, what has more
 * digits is rounded). Nothing is ever stopped.
 */
const warnAndContinue: SchemaEvolutionImpl = {
  async loadFile(db, file, tables, _history, reader) {
    const current = await currentContract(db, tables);
    if (!current) return loadDropFile(db, file, tables, checkCompatibility, reader);
    const incoming = await readFileSchema(reader, file, current.columns);
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
      const types = new Map(contract.map((c) => [c.name, c.type]));
      const loadId = await nextLoadId(tx, tables);
      const cols = incoming.map((c) => ({ name: c.name, type: types.get(c.name)!, expr: `TRY_CAST(${reader.dialect.ident(c.name)} AS ${typeName(types.get(c.name)!)})` }));
      await insertSelected(tx, reader, tables.table, fileScan(file), cols, { id: loadId, version });
      // logging.warning(...) and carry on: the warnings go to the log, the rows to the table.
      const outcome: LoadOutcome = { file: file.name, status: 'landed', loadId, rows: await fileRows(reader, file), version, ...(warnings.length ? { error: `WARNING ${warnings.join('; ')}` } : {}) };
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
  loadFile: (db, file, tables, _history, reader) =>
    loadDropFile(db, file, tables, (contract, incoming) => {
      const mismatched = new Set(incoming.filter((i) => contract.some((c) => c.name === i.name && !sameType(c.type, i.type))).map((i) => i.name));
      const asText = (cols: readonly Column[]) => cols.map((c) => (mismatched.has(c.name) ? { name: c.name, type: { kind: 'text' as const } } : c));
      const verdict = checkCompatibility(asText(contract), asText(incoming));
      if (!verdict.compatible) return verdict;
      return { ...verdict, changes: [...[...mismatched].map((n) => `${n} → VARCHAR`), ...verdict.changes] };
    }, reader),
};

/**
 * Every day, rebuild the table from all files so far, read together and combined with
 * `UNION ALL BY NAME` (Parquet with union_by_name): columns line up by name, but where two files
 * disagree on a type DuckDB promotes silently — DECIMAL with a JSON DOUBLE becomes DOUBLE, INTEGER
 * with VARCHAR becomes VARCHAR — and a removed or renamed column just leaves NULLs.
 */
const unionByName: SchemaEvolutionImpl = {
  async loadFile(db, file, tables, history, reader) {
    const all = [...history, file];
    const byFormat = (f: DropFile['format']) => all.filter((x) => x.format === f).map((x) => nameLiteral(x.path));
    const reads = [
      byFormat('parquet').length ? `SELECT * FROM read_parquet([${byFormat('parquet').join(', ')}], union_by_name = true, filename = true)` : null,
      byFormat('json').length ? `SELECT * FROM read_json([${byFormat('json').join(', ')}], format = 'newline_delimited', union_by_name = true, filename = true)` : null,
      byFormat('csv').length ? `SELECT * FROM read_csv([${byFormat('csv').join(', ')}], header = true, union_by_name = true, filename = true)` : null,
    ].filter(Boolean);
    const union = `(${reads.join(' UNION ALL BY NAME ')}) AS u`;
    // Whatever types DuckDB settled on for the union become the table's.
    const cols = (await reader.query<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM ${union}`))
      .filter((r) => r.column_name !== 'filename')
      .map((r) => ({ name: r.column_name, type: parseType(r.column_type) }));
    // File k of the drops is load k: this loader logs one row per file.
    const loadIdExpr = `list_position([${all.map((f) => nameLiteral(f.name)).join(', ')}], regexp_extract(filename, '[^/]+$'))`;
    return db.transaction(async (tx) => {
      await tx.exec(`DROP TABLE IF EXISTS ${tx.dialect.ident(tables.table)}`);
      await evolveTable(tx, tables.table, null, cols);
      await insertSelected(tx, reader, tables.table, union, cols.map((c) => ({ ...c, expr: reader.dialect.ident(c.name) })), { id: { expr: loadIdExpr }, version: 1 });
      if (!(await currentContract(tx, tables))) {
        const first = await readFileSchema(reader, file, null);
        await recordContractVersion(tx, tables, 1, file, first, [`create ${schemaText(first)}`]);
      }
      const outcome: LoadOutcome = { file: file.name, status: 'landed', loadId: all.length, rows: await fileRows(reader, file), version: 1 };
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
  loadFile: referenceImpl.loadFile,
  async produce(kafka, registry, topic, schema, records) {
    const id = registry.register(`${topic}-value`, schema, { check: false });
    await sendFramed(kafka, topic, id, schema, records);
    return id;
  },
};

/**
 * The cdc pipeline's own schema handling: the target grows a column for every new one the events
 * carry, and a column that stops coming is left alone. A rename then becomes a second column (the
 * old one stale in every row changed since), a dropped column keeps its last values, and a retyped
 * one is cast into the old type, or fails the MERGE.
 */
const addNewColumns: SchemaEvolutionImpl = {
  loadFile: referenceImpl.loadFile,
  async applyChanges(target, table, messages) {
    const schema = new TargetSchema(target);
    await schema.ensureWatermarkTable();
    const run = { applied: 0, batches: 0, changes: [] as string[], stops: [] };
    for (const r of schemaRuns(messages)) {
      const t = { ...batchSchema(r.events), name: table };
      for (const c of await schema.ensureTable(t)) run.changes.push(`add ${c}`);
      await applyBatch(target, { topic: table, partition: r.partition, table: t, events: r.events });
      run.applied += r.events.length;
      run.batches += 1;
    }
    return run;
  },
};

/**
 * The CDC variant of warn-and-continue: evolve what can be evolved (add, widen), and on anything
 * else keep the contract, add what is new and apply anyway.
 */
const evolveAndContinue: SchemaEvolutionImpl = {
  loadFile: referenceImpl.loadFile,
  applyChanges: gatedApply((contract, incoming) => {
    const v = checkCompatibility(contract, incoming);
    if (v.compatible) return v;
    const known = new Set(contract.map((c) => c.name));
    const added = incoming.filter((c) => !known.has(c.name));
    return { compatible: true, contract: [...contract, ...added], changes: added.map((c) => `add ${c.name} ${typeName(c.type)}`) };
  }),
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
  {
    name: 'cdc-add-new-columns',
    title: 'CDC apply: add a target column for every new one the events carry, never stop',
    description:
      'What a CDC sink does by default (and what this project\'s cdc lab does for ADD COLUMN): the target evolves by ' +
      'adding columns, and only that. The INTEGER → BIGINT widening then fails the MERGE at the first value past 2^31 — ' +
      'an apply that fails on every retry, not a gate; had it got further, status → state would be a second column.',
    impl: addNewColumns,
  },
  {
    name: 'cdc-evolve-and-continue',
    title: 'CDC apply: evolve what can be evolved (add, widen), warn on the rest and apply anyway',
    description:
      'Adds and widens like the reference, and never stops: on the rename it adds state and carries on, so status is ' +
      'stale (or NULL) in every row changed since; the dropped coupon keeps its last values; the retyped amount is cast ' +
      'into BIGINT until the first \'refunded\' fails the MERGE.',
    impl: evolveAndContinue,
  },
];
