import type { Dialect, Row, SqlEngine, TargetEngineName } from './types.ts';

/**
 * What every driver shares: one statement at a time per connection (so callers may fire
 * concurrently without interleaving a transaction), and `transaction()` with nesting that joins
 * the outer transaction. A driver supplies only how to run a statement.
 */
export abstract class SerialSqlEngine implements SqlEngine {
  abstract readonly name: TargetEngineName;
  abstract readonly dialect: Dialect;
  /** The statement that opens a transaction on this engine. */
  protected readonly beginStatement: string = 'BEGIN TRANSACTION';
  private inTx = false;
  private queue: Promise<unknown> = Promise.resolve();

  protected serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Waits for the statements already queued (before closing the connection). */
  protected drain(): Promise<void> {
    return this.queue.then(
      () => undefined,
      () => undefined,
    );
  }

  abstract query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  abstract exec(sql: string, params?: readonly unknown[]): Promise<void>;
  abstract insertRows(table: string, columns: readonly string[], rows: readonly (readonly unknown[])[]): Promise<void>;
  abstract close(): Promise<void>;

  async transaction<T>(fn: (tx: SqlEngine) => Promise<T>): Promise<T> {
    if (this.inTx) return fn(this);
    await this.exec(this.beginStatement);
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
}

/**
 * Multi-row `INSERT … VALUES` statements for `rows`, at most `maxBinds` bind values (and
 * `maxRows` rows) each; `placeholder(i)` spells the i-th bind (0-based) in the engine's syntax.
 */
export function* valuesInserts(
  table: string,
  quotedColumns: string,
  width: number,
  rows: readonly (readonly unknown[])[],
  options: { maxBinds: number; maxRows?: number; placeholder: (i: number) => string },
): Generator<{ sql: string; params: unknown[] }> {
  const chunk = Math.max(1, Math.min(options.maxRows ?? Infinity, Math.floor(options.maxBinds / Math.max(1, width))));
  for (let i = 0; i < rows.length; i += chunk) {
    const part = rows.slice(i, i + chunk);
    const params: unknown[] = [];
    const tuples = part.map((r) => `(${r.map((v) => (params.push(v), options.placeholder(params.length - 1))).join(', ')})`);
    yield { sql: `INSERT INTO ${table} (${quotedColumns}) VALUES ${tuples.join(', ')}`, params };
  }
}
