import snowflake from 'snowflake-sdk';
import type { Row, SqlValue } from '../types.ts';
import { SerialSqlEngine, valuesInserts } from '../base.ts';
import { snowflakeDialect } from './dialect.ts';
import { EngineUnavailableError } from '../../errors.ts';

// The driver logs to a file in the working directory by default; keep the lab's output clean.
snowflake.configure({ logLevel: 'OFF' } as snowflake.ConfigureOptions);

/** How to reach a Snowflake (or emulator) account; see provision.ts for where it comes from. */
export interface SnowflakeConnectionOptions {
  account: string;
  username: string;
  password?: string;
  /** Key-pair auth (SNOWFLAKE_JWT). */
  privateKeyPath?: string;
  privateKeyPass?: string;
  warehouse?: string;
  role?: string;
  database?: string;
  schema?: string;
  /** e.g. http://127.0.0.1:40123 for the emulator; unset for a real account (the driver derives it). */
  accessUrl?: string;
}

/**
 * Snowflake through the official Node.js driver (`snowflake-sdk`), one connection per handle so
 * transactions are real and statements ordered.
 *
 * Value mapping (same as ../types.ts): NUMBER(p,0) → number, or bigint beyond 2^53 (read as text
 * so no digit is lost); NUMBER(p,s>0)/DOUBLE → number; DATE → 'YYYY-MM-DD'; TIMESTAMP_NTZ → Date (UTC).
 * Column names: Snowflake folds unquoted names to UPPER case; a result column whose name has no
 * lower-case letter is returned lower-cased, so `SELECT id …` gives `row.id` as on DuckDB/Postgres.
 *
 * Binds: pipelines write `$1, $2, …`; each is rewritten to a positional `?` with the value
 * re-ordered (and repeated) to match, so `$2 … $1 … $2` binds correctly.
 *
 * Bulk load (`insertRows`): multi-row `INSERT … VALUES (?, …), (?, …)` with binds, in chunks.
 * Chosen over stage + COPY INTO because our batches are micro-batches and snapshots (thousands
 * of rows, not gigabytes): one statement per chunk, no file round trip, and it runs inside the
 * caller's `transaction()` like every other write. It is also the only path fakesnow serves:
 * `PUT file://… @stage` fails in snowflake-sdk against it (README "Snowflake engine", known
 * limits), and the driver's array binds (`binds: [[…], […]]`) type each column from its first
 * row, so a DOUBLE column whose first value is 0 is sent as FIXED and 0.33 then fails.
 * For loads of many GB on a real account, stage + COPY INTO is the right tool.
 */
export class SnowflakeEngine extends SerialSqlEngine {
  readonly name = 'snowflake' as const;
  readonly dialect = snowflakeDialect;

  private constructor(
    readonly connection: snowflake.Connection,
    readonly options: SnowflakeConnectionOptions,
    /** 'external' (a real account) or 'local' (the fakesnow emulator). */
    readonly provider: 'external' | 'local',
  ) {
    super();
  }

  static async connect(options: SnowflakeConnectionOptions, provider: 'external' | 'local'): Promise<SnowflakeEngine> {
    const config: Record<string, unknown> = {
      account: options.account,
      username: options.username,
      warehouse: options.warehouse,
      role: options.role,
      database: options.database,
      schema: options.schema,
      application: 'de-lab',
      // Values fetched as strings (NUMBER, below) are 'NULL' for SQL NULL by default: keep null.
      representNullAsStringNull: false,
    };
    if (options.accessUrl) config.accessUrl = options.accessUrl;
    if (options.privateKeyPath) {
      config.authenticator = 'SNOWFLAKE_JWT';
      config.privateKeyPath = options.privateKeyPath;
      if (options.privateKeyPass) config.privateKeyPass = options.privateKeyPass;
    } else {
      config.password = options.password;
    }
    const connection = snowflake.createConnection(config as unknown as snowflake.ConnectionOptions);
    try {
      await new Promise<void>((resolve, reject) => connection.connect((err) => (err ? reject(err) : resolve())));
    } catch (err) {
      const where = options.accessUrl ?? `account ${options.account}`;
      throw new EngineUnavailableError(`Snowflake at ${where} refused the connection: ${(err as Error).message}`);
    }
    return new SnowflakeEngine(connection, options, provider);
  }

  private run(sql: string, params?: readonly unknown[]): Promise<Row[]> {
    const { text, binds } = toPositional(sql, params ?? []);
    return new Promise<Row[]>((resolve, reject) => {
      this.connection.execute({
        sqlText: text,
        binds: binds.length > 0 ? (binds as snowflake.Binds) : undefined,
        // Exact integers: NUMBER comes back as text and is converted per column below.
        fetchAsString: ['Number'],
        complete: (err, stmt, rows) => {
          if (err) return reject(new SnowflakeQueryError(err.message, text, (err as { code?: unknown }).code));
          try {
            resolve(convertRows(stmt as snowflake.RowStatement, rows ?? []));
          } catch (e) {
            reject(e as Error);
          }
        },
      });
    });
  }

  async query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.serial(async () => (await this.run(sql, params)) as T[]);
  }

  async exec(sql: string, params?: readonly unknown[]): Promise<void> {
    await this.serial(async () => {
      if (params && params.length > 0) {
        await this.run(sql, params);
        return;
      }
      // A script: the driver sends one statement per request (multi-statement needs a
      // per-request MULTI_STATEMENT_COUNT, which fakesnow does not implement).
      for (const statement of splitStatements(sql)) await this.run(statement);
    });
  }

  async insertRows(table: string, columns: readonly string[], rows: readonly (readonly unknown[])[]): Promise<void> {
    const cols = columns.map((c) => this.dialect.ident(c)).join(', ');
    // Snowflake caps one VALUES clause at 16,384 rows; stay well under it and under ~16k binds.
    for (const { sql, params } of valuesInserts(table, cols, columns.length, rows, { maxBinds: 16000, maxRows: 1000, placeholder: () => '?' })) {
      await this.serial(() => this.runPositional(sql, params));
    }
  }

  /** Runs SQL already written with `?` placeholders. */
  private runPositional(sql: string, values: readonly unknown[]): Promise<Row[]> {
    return new Promise<Row[]>((resolve, reject) => {
      this.connection.execute({
        sqlText: sql,
        binds: values.map(toBind) as snowflake.Binds,
        complete: (err) => (err ? reject(new SnowflakeQueryError(err.message, sql.slice(0, 200), (err as { code?: unknown }).code)) : resolve([])),
      });
    });
  }

  async close(): Promise<void> {
    await this.drain();
    await new Promise<void>((resolve) => {
      try {
        this.connection.destroy(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}

/** A statement Snowflake rejected; `code` is Snowflake's error code (e.g. 2003: object does not exist). */
export class SnowflakeQueryError extends Error {
  constructor(
    message: string,
    readonly sql: string,
    readonly code: unknown,
  ) {
    super(message);
    this.name = 'SnowflakeQueryError';
  }
}

/** `$n` → `?` outside quotes and comments, with the bind values laid out in order of use. */
export function toPositional(sql: string, params: readonly unknown[]): { text: string; binds: snowflake.Bind[] } {
  if (params.length === 0) return { text: sql, binds: [] };
  const binds: snowflake.Bind[] = [];
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    if (ch === "'" || ch === '"') {
      const end = endOfQuoted(sql, i, ch);
      out += sql.slice(i, end);
      i = end;
    } else if (ch === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end < 0 ? sql.length : end;
      out += sql.slice(i, stop);
      i = stop;
    } else if (ch === '$' && /[0-9]/.test(sql[i + 1] ?? '')) {
      let j = i + 1;
      while (j < sql.length && /[0-9]/.test(sql[j]!)) j++;
      const n = Number(sql.slice(i + 1, j));
      if (n < 1 || n > params.length) throw new Error(`bind $${n} has no value (${params.length} given)`);
      binds.push(toBind(params[n - 1]));
      out += '?';
      i = j;
    } else {
      out += ch;
      i++;
    }
  }
  return { text: out, binds };
}

function endOfQuoted(sql: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < sql.length) {
    if (quote === "'" && sql[i] === '\\') {
      i += 2; // Snowflake: backslash escapes inside string literals
      continue;
    }
    if (sql[i] === quote) {
      if (sql[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return sql.length;
}

/** Splits a script on top-level `;` (not inside quotes or `--` comments); drops empty pieces. */
export function splitStatements(script: string): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  while (i < script.length) {
    const ch = script[i]!;
    if (ch === "'" || ch === '"') i = endOfQuoted(script, i, ch);
    else if (ch === '-' && script[i + 1] === '-') {
      const end = script.indexOf('\n', i);
      i = end < 0 ? script.length : end;
    } else if (ch === ';') {
      out.push(script.slice(start, i));
      start = ++i;
    } else i++;
  }
  out.push(script.slice(start));
  return out.map((s) => s.trim()).filter((s) => s.replace(/--[^\n]*/g, '').trim().length > 0);
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

function toBind(v: unknown): snowflake.Bind {
  if (v === undefined || v === null) return null;
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) {
    // A wall-clock UTC text: CAST(? AS TIMESTAMP_NTZ) reads it without any session zone.
    return `${v.getUTCFullYear()}-${pad(v.getUTCMonth() + 1)}-${pad(v.getUTCDate())} ${pad(v.getUTCHours())}:${pad(v.getUTCMinutes())}:${pad(v.getUTCSeconds())}.${pad(v.getUTCMilliseconds(), 3)}`;
  }
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  return JSON.stringify(v);
}

function convertRows(stmt: snowflake.RowStatement, rows: readonly Record<string, unknown>[]): Row[] {
  const columns = (stmt.getColumns?.() ?? []) as snowflake.Column[];
  if (rows.length === 0) return [];
  const spec = columns.map((c) => ({
    from: c.getName(),
    to: /[a-z]/.test(c.getName()) ? c.getName() : c.getName().toLowerCase(),
    type: String(c.getType()).toLowerCase(),
    scale: c.getScale() ?? 0,
  }));
  return rows.map((raw) => {
    const row: Row = {};
    for (const c of spec) row[c.to] = convertValue(raw[c.from], c.type, c.scale);
    return row;
  });
}

function convertValue(v: unknown, type: string, scale: number): SqlValue {
  if (v === null || v === undefined) return null;
  if (type === 'fixed') {
    const s = String(v);
    if (scale === 0) {
      const n = Number(s);
      return Number.isSafeInteger(n) ? n : BigInt(s);
    }
    return Number(s);
  }
  if (type === 'real') return Number(v);
  if (type === 'date') return v instanceof Date ? v.toISOString().slice(0, 10) : String(v).slice(0, 10);
  if (type.startsWith('timestamp')) return v instanceof Date ? new Date(v.getTime()) : new Date(String(v));
  if (typeof v === 'boolean' || typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint') return v;
  if (v instanceof Date) return new Date(v.getTime());
  return JSON.stringify(v);
}
