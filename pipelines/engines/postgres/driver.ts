import pg from 'pg';
import type { Row, SqlEngine } from '../types.ts';
import { postgresDialect } from './dialect.ts';
import { EngineUnavailableError } from '../../errors.ts';

// Map Postgres types onto the shared value mapping in ../types.ts.
const parsers: Record<number, (s: string) => unknown> = {
  20: (s) => (Number.isSafeInteger(Number(s)) ? Number(s) : BigInt(s)), // int8
  1700: (s) => Number(s), // numeric
  1082: (s) => s, // date stays 'YYYY-MM-DD'
  1114: (s) => new Date(s.replace(' ', 'T') + 'Z'), // timestamp without time zone, read as UTC
};
const types = {
  getTypeParser: (oid: number, format?: string) =>
    (parsers[oid] as ((s: string) => unknown) | undefined) ?? pg.types.getTypeParser(oid, format as 'text'),
};

/** One PostgreSQL connection (a `pg.Client`), so transactions are real and ordered. */
export class PgEngine implements SqlEngine {
  readonly name = 'postgres' as const;
  readonly dialect = postgresDialect;
  private inTx = false;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly client: pg.Client,
    readonly url: string,
  ) {}

  static async connect(url: string, options: { applicationName?: string } = {}): Promise<PgEngine> {
    const client = new pg.Client({ connectionString: url, types, application_name: options.applicationName ?? 'de-lab' });
    client.on('error', () => undefined); // a server stop while idle is reported on the next query
    try {
      await client.connect();
    } catch (err) {
      throw new EngineUnavailableError(`PostgreSQL at ${redact(url)} does not answer: ${(err as Error).message}`);
    }
    return new PgEngine(client, url);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.serial(async () => {
      const res = await this.client.query(sql, params as unknown[] | undefined);
      // A multi-statement script returns an array of results; the last one carries the rows.
      const last = Array.isArray(res) ? res[res.length - 1] : res;
      return (last?.rows ?? []) as T[];
    });
  }

  async exec(sql: string, params?: readonly unknown[]): Promise<void> {
    await this.query(sql, params && params.length > 0 ? params : undefined);
  }

  async transaction<T>(fn: (tx: SqlEngine) => Promise<T>): Promise<T> {
    if (this.inTx) return fn(this);
    await this.exec('BEGIN');
    this.inTx = true;
    try {
      const out = await fn(this);
      await this.exec('COMMIT');
      return out;
    } catch (err) {
      await this.exec('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      this.inTx = false;
    }
  }

  async insertRows(table: string, columns: readonly string[], rows: readonly (readonly unknown[])[]): Promise<void> {
    if (rows.length === 0) return;
    const chunk = Math.max(1, Math.floor(60000 / columns.length)); // protocol limit: 65535 binds
    const cols = columns.map((c) => this.dialect.ident(c)).join(', ');
    for (let i = 0; i < rows.length; i += chunk) {
      const part = rows.slice(i, i + chunk);
      const params: unknown[] = [];
      const tuples = part.map((r) => `(${r.map((v) => (params.push(v), `$${params.length}`)).join(', ')})`);
      await this.exec(`INSERT INTO ${table} (${cols}) VALUES ${tuples.join(', ')}`, params);
    }
  }

  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    await this.client.end().catch(() => undefined);
  }
}

/** A URL with its password hidden, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
