/**
 * The expectation compiler: each expectation of the suite becomes SQL fragments that run in the
 * engine, and the suite's row- and batch-level fragments go into ONE aggregate SELECT over the
 * batch (`evaluationSql`) — one pass, however many expectations there are. No row is pulled into
 * Node to be checked: the engine answers one row of counts.
 *
 * A row-level fragment is a pair of boolean expressions over the batch row `b`:
 *   failed   TRUE when the row fails the expectation — never NULL (a NULL would be neither a pass
 *            nor a fail, and `WHERE NOT (…)` / `WHERE (…)` would both drop the row);
 *   isNull   TRUE when the checked value is NULL: NULLs are counted as their own outcome, and
 *            the expectation's `nulls` policy says whether they also fail.
 */
import type { Dialect } from '../engines/types.ts';
import { qualityDialect } from './dialect.ts';
import { ROW_KINDS, SCHEMA_KINDS, type Expectation, type TypeFamily } from './suite.ts';

/** Builds one statement's SQL: bind parameters are numbered in the order they are added. */
export class SqlBuilder {
  readonly params: unknown[] = [];
  constructor(
    readonly dialect: Dialect,
    /** The alias of the batch row in the statement. */
    readonly alias = 'b',
  ) {}

  /** A bind parameter; `cast` types it where an engine could not infer it (a CASE result, a comparison with a literal). */
  param(value: unknown, cast?: 'text' | 'numeric' | 'timestamp' | 'date'): string {
    this.params.push(value);
    const p = `$${this.params.length}`;
    const type = { text: 'VARCHAR', numeric: 'DOUBLE PRECISION', timestamp: 'TIMESTAMP', date: 'DATE' };
    return cast ? `CAST(${p} AS ${type[cast]})` : p;
  }

  /** A column of the batch row. */
  col(name: string): string {
    return `${this.alias}.${this.dialect.ident(name)}`;
  }

  table(name: string): string {
    return this.dialect.ident(name);
  }

  regexMatch(expr: string, patternParam: string): string {
    return qualityDialect(this.dialect.name).regexMatch(expr, patternParam);
  }
}

export interface RowCheck {
  level: 'row';
  failed: string;
  isNull: string;
}

export interface BatchCheck {
  level: 'batch';
  /** Aggregates over the batch, by name: computed in the evaluation scan. */
  aggregates: Record<string, string>;
  /** Verdict from the aggregates' values (a NULL aggregate, e.g. max over no rows, arrives as null). */
  judge(values: Record<string, number | null>): { passed: boolean; observed: string };
}

export interface SchemaCheck {
  level: 'schema';
  /** Verdict from the bronze table's columns (name → the catalog's data_type). */
  judge(columns: ReadonlyMap<string, string>): { passed: boolean; observed: string };
}

export type CompiledExpectation = RowCheck | BatchCheck | SchemaCheck;
export type ExpectationCompiler = (e: Expectation, sql: SqlBuilder) => CompiledExpectation;

const TYPE_FAMILIES: Record<TypeFamily, RegExp> = {
  integer: /^(bigint|integer|int\d*|smallint|hugeint)$/i,
  numeric: /^(decimal|numeric)(\(.*\))?$/i,
  text: /^(varchar|text|character varying)(\(.*\))?$/i,
  date: /^date$/i,
  timestamp: /^timestamp( without time zone)?$/i,
};

/** `failed` for a value check: NULL is its own outcome, failing or passing by the policy; otherwise the value must satisfy `ok`. */
function valueCheck(col: string, ok: string, nulls: 'fail' | 'pass'): RowCheck {
  return { level: 'row', isNull: `(${col} IS NULL)`, failed: `(CASE WHEN ${col} IS NULL THEN ${nulls === 'fail' ? 'TRUE' : 'FALSE'} WHEN ${ok} THEN FALSE ELSE TRUE END)` };
}

const num = (v: number | null | undefined) => (v === null || v === undefined ? 0 : Number(v));

function duplicates(columns: readonly string[], v: Record<string, number | null>): { passed: boolean; observed: string } {
  const dups = num(v.keyed) - num(v.distinct);
  return { passed: dups === 0, observed: `${dups} duplicate ${columns.join('+')} rows` };
}

/** The reference compiler. */
export function compileExpectation(e: Expectation, sql: SqlBuilder): CompiledExpectation {
  switch (e.kind) {
    case 'column_exists':
      return {
        level: 'schema',
        judge: (cols) => {
          const missing = e.columns.filter((c) => !cols.has(c));
          return { passed: missing.length === 0, observed: missing.length ? `missing ${missing.join(', ')}` : `${e.columns.length} columns present` };
        },
      };
    case 'column_type':
      return {
        level: 'schema',
        judge: (cols) => {
          const type = cols.get(e.column);
          return { passed: type !== undefined && TYPE_FAMILIES[e.type].test(type), observed: type ?? 'missing' };
        },
      };
    case 'not_null': {
      const c = sql.col(e.column);
      return { level: 'row', isNull: `(${c} IS NULL)`, failed: `(${c} IS NULL)` };
    }
    case 'between': {
      const c = sql.col(e.column);
      return valueCheck(c, `${c} BETWEEN ${sql.param(e.min, 'numeric')} AND ${sql.param(e.max, 'numeric')}`, e.nulls);
    }
    case 'in_set': {
      const c = sql.col(e.column);
      return valueCheck(c, `${c} IN (${e.values.map((v) => sql.param(v, 'text')).join(', ')})`, e.nulls);
    }
    case 'regex': {
      const c = sql.col(e.column);
      return valueCheck(c, sql.regexMatch(c, sql.param(e.pattern, 'text')), e.nulls);
    }
    case 'references': {
      const c = sql.col(e.column);
      const key = sql.dialect.ident(e.key);
      // IN (subquery) is a hashed semi-join on both engines; a NULL key in the reference table is skipped, or IN would turn every miss into NULL.
      return valueCheck(c, `${c} IN (SELECT r.${key} FROM ${sql.table(e.table)} AS r WHERE r.${key} IS NOT NULL)`, e.nulls);
    }
    case 'unique': {
      const cols = e.columns.map((c) => sql.col(c));
      if (cols.length === 1) {
        // count(DISTINCT col) skips NULLs as count(col) does: rows with a NULL key are not compared (as a UNIQUE constraint).
        return { level: 'batch', aggregates: { keyed: `count(${cols[0]})`, distinct: `count(DISTINCT ${cols[0]})` }, judge: (v) => duplicates(e.columns, v) };
      }
      const allSet = cols.map((c) => `${c} IS NOT NULL`).join(' AND ');
      // A tuple's distinct count: one 64-bit digest per row where the engine has one (DuckDB's hash(…): a
      // tuple of strings costs ~3× a number to hash-aggregate). A digest collision can only merge two
      // keys — a false duplicate, never a missed one (~3e-8 for a 1M-row batch).
      const key = sql.dialect.changeDigest?.(cols)[0] ?? `(${cols.join(', ')})`;
      return {
        level: 'batch',
        aggregates: { keyed: `sum(CASE WHEN ${allSet} THEN 1 ELSE 0 END)`, distinct: `count(DISTINCT CASE WHEN ${allSet} THEN ${key} END)` },
        judge: (v) => duplicates(e.columns, v),
      };
    }
    case 'completeness': {
      const c = sql.col(e.column);
      return {
        level: 'batch',
        // count(col), not count(*): count(*) counts the NULL rows too and the ratio is always 1.
        aggregates: { present: `count(${c})`, rows: 'count(*)' },
        judge: (v) => {
          const ratio = num(v.rows) === 0 ? 1 : num(v.present) / num(v.rows);
          return { passed: ratio >= e.min, observed: `${(ratio * 100).toFixed(1)} % present (min ${(e.min * 100).toFixed(0)} %)` };
        },
      };
    }
    case 'row_count':
      return {
        level: 'batch',
        aggregates: { rows: 'count(*)' },
        judge: (v) => ({ passed: num(v.rows) >= e.min && (e.max === undefined || num(v.rows) <= e.max), observed: `${num(v.rows)} rows` }),
      };
    case 'freshness': {
      const c = sql.col(e.column);
      // The cut-off is the batch day + hours, from the batch date parameter ($1).
      return {
        level: 'batch',
        aggregates: { fresh: `max(CASE WHEN ${c} >= CAST(CAST($1 AS DATE) AS TIMESTAMP) + ${sql.param(e.hours, 'numeric')} * INTERVAL '1 hour' THEN 1 ELSE 0 END)` },
        judge: (v) => ({ passed: num(v.fresh) === 1, observed: num(v.fresh) === 1 ? `latest ${e.column} at or after hour ${e.hours}` : `no ${e.column} at or after hour ${e.hours}` }),
      };
    }
    case 'custom_sql': {
      const text = e.sql.replace(/\{(\w+)\}/g, (_m, k: string) => {
        if (!(k in e.params)) throw new Error(`expectation ${e.name}: no parameter {${k}}`);
        const v = e.params[k]!;
        return sql.param(v, typeof v === 'number' ? 'numeric' : 'text');
      });
      return {
        level: 'batch',
        // Three outcomes: 1 holds, 0 does not, NULL nothing to judge (avg over no rows): an empty batch is the row count's to report.
        aggregates: { ok: `CASE WHEN ${text} THEN 1 WHEN NOT (${text}) THEN 0 END` },
        judge: (v) => ({ passed: v.ok !== 0, observed: v.ok === null ? 'nothing to judge (no rows)' : v.ok === 1 ? 'holds' : `does not hold: ${e.sql}` }),
      };
    }
  }
}

export const isRowLevel = (e: Expectation) => ROW_KINDS.has(e.kind);
export const isSchemaLevel = (e: Expectation) => SCHEMA_KINDS.has(e.kind);

/** The columns whose null rate the monitor keeps per batch. */
export const MONITORED_NULLS = ['customer_id', 'email', 'amount'] as const;

export interface CompiledSuite {
  expectations: { e: Expectation; c: CompiledExpectation }[];
}

function compileAll(suite: readonly Expectation[], sql: SqlBuilder, compile: ExpectationCompiler): CompiledSuite {
  return {
    expectations: suite.map((e) => {
      const c = compile(e, sql);
      const want = isSchemaLevel(e) ? 'schema' : isRowLevel(e) ? 'row' : 'batch';
      if (c.level !== want) throw new Error(`expectation ${e.name} (${e.kind}) compiled to a ${c.level}-level check; it is ${want}-level`);
      return { e, c };
    }),
  };
}

/**
 * The reason list of a row: the names of the warning row-level expectations it fails (`:null`
 * when the value was NULL), comma-separated; '' for a clean row. Never NULL (concat_ws skips NULL
 * pieces), so `reasons = ''` and `reasons <> ''` split the batch exactly.
 */
function reasonList(compiled: CompiledSuite, sql: SqlBuilder): string {
  const pieces = compiled.expectations
    .filter(({ e, c }) => c.level === 'row' && e.severity === 'warning')
    .map(({ e, c }) => {
      const r = c as RowCheck;
      return `CASE WHEN ${r.failed} AND ${r.isNull} THEN ${sql.param(`${e.name}:null`, 'text')} WHEN ${r.failed} THEN ${sql.param(e.name, 'text')} END`;
    });
  return pieces.length ? `concat_ws(',', ${pieces.join(', ')})` : `''`;
}

export interface EvaluationQuery {
  sql: string;
  params: unknown[];
  compiled: CompiledSuite;
}

/**
 * The suite's ONE scan of the batch: a single aggregate SELECT with, per row-level expectation,
 * its failed and NULL counts, the rows to quarantine, every batch-level aggregate, and the
 * monitor's metrics. `$1` is the batch date.
 */
export function evaluationSql(dialect: Dialect, bronze: string, suite: readonly Expectation[], batchDate: string, compile: ExpectationCompiler = compileExpectation): EvaluationQuery {
  const sql = new SqlBuilder(dialect);
  sql.param(batchDate);
  const compiled = compileAll(suite, sql, compile);
  // Inner SELECT: the batch's rows with every row-level flag computed once; outer: one aggregate row.
  const flags: string[] = [];
  const cols: string[] = ['count(*) AS n_rows'];
  const warnFails: string[] = [];
  compiled.expectations.forEach(({ e, c }, i) => {
    if (c.level === 'row') {
      flags.push(`${c.failed} AS f${i}`, `${c.isNull} AS n${i}`);
      cols.push(`sum(CASE WHEN b.f${i} THEN 1 ELSE 0 END) AS e${i}_failed`, `sum(CASE WHEN b.n${i} THEN 1 ELSE 0 END) AS e${i}_nulls`);
      if (e.severity === 'warning') warnFails.push(`b.f${i}`);
    } else if (c.level === 'batch') {
      for (const [k, expr] of Object.entries(c.aggregates)) cols.push(`${expr} AS e${i}_${k}`);
    }
  });
  cols.push(`sum(CASE WHEN ${warnFails.length ? warnFails.join(' OR ') : 'FALSE'} THEN 1 ELSE 0 END) AS n_quarantine`);
  for (const m of MONITORED_NULLS) cols.push(`count(${sql.col(m)}) AS m_present_${m}`);
  cols.push(`count(DISTINCT ${sql.col('order_id')}) AS m_distinct_order_ids`, `sum(${sql.col('amount')}) AS m_amount_sum`, `avg(${sql.col('amount')}) AS m_amount_avg`);
  const inner = `SELECT b.*${flags.map((f) => `,\n         ${f}`).join('')}\n  FROM ${dialect.ident(bronze)} AS b\n  WHERE b.batch_date = CAST($1 AS DATE)`;
  return { sql: `SELECT ${cols.join(',\n       ')}\nFROM (\n  ${inner}\n) AS b`, params: sql.params, compiled };
}

/**
 * INSERT … SELECT of the batch's rows into `target`: the clean rows (reasons = '') for silver,
 * the others with their reasons for quarantine. `$1` is the batch date.
 */
export function routeRowsSql(
  dialect: Dialect,
  tables: { bronze: string; target: string },
  columns: readonly string[],
  suite: readonly Expectation[],
  route: 'clean' | 'quarantine',
  batchDate: string,
  compile: ExpectationCompiler = compileExpectation,
): { sql: string; params: unknown[] } {
  const sql = new SqlBuilder(dialect);
  sql.param(batchDate);
  // Only the expectations that route rows are compiled: every bind parameter must appear in the statement.
  const reasons = reasonList(compileAll(suite.filter((e) => isRowLevel(e) && e.severity === 'warning'), sql, compile), sql);
  const list = columns.map((c) => dialect.ident(c)).join(', ');
  const inner = `SELECT ${columns.map((c) => sql.col(c)).join(', ')}, ${reasons} AS reasons FROM ${dialect.ident(tables.bronze)} AS b WHERE b.batch_date = CAST($1 AS DATE)`;
  return route === 'clean'
    ? { sql: `INSERT INTO ${dialect.ident(tables.target)} (${list}) SELECT ${list} FROM (${inner}) AS x WHERE x.reasons = ''`, params: sql.params }
    : { sql: `INSERT INTO ${dialect.ident(tables.target)} (${list}, reasons) SELECT ${list}, reasons FROM (${inner}) AS x WHERE x.reasons <> ''`, params: sql.params };
}
