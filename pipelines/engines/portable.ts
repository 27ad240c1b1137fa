/**
 * A target another process can open: a serializable descriptor per engine, the code that makes a
 * fresh one, and the code that opens it. How a lab hands its target to a child process (the cdc
 * apply consumer, the incremental lab's SIGKILLed extractor) without either knowing the engine.
 *
 * DuckDB is single-writer across processes: while a child has the file open, nobody else can
 * open it — the parent stops (or kills) the child before it reads the target.
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DuckDbEngine } from './duckdb/driver.ts';
import { PgEngine } from './postgres/driver.ts';
import type { SqlEngine, TargetEngineName } from './types.ts';
import type { Engines } from './index.ts';
import { UsageError } from '../errors.ts';

export type PortableTarget =
  | { engine: 'duckdb'; path: string }
  | { engine: 'postgres'; url: string }
  /** createSnowflakeTarget's descriptor (no secrets: a real account's are read from SNOWFLAKE_* on open). */
  | { engine: 'snowflake'; connection: Record<string, string> };

interface PortableEngine {
  /** A fresh, empty target: a file in `dir`, a new database, a new schema. */
  make(engines: Engines, dir: string, label: string): Promise<PortableTarget>;
  open(target: PortableTarget, opts: { applicationName?: string }): Promise<SqlEngine>;
  describe(target: PortableTarget): string;
  /** A SIGKILLed client leaves its open transaction behind (Snowflake): a restart must abort it. */
  killLeavesTransactionOpen?: boolean;
}

const portable = new Map<TargetEngineName, PortableEngine>();

export function registerPortableTarget(engine: TargetEngineName, e: PortableEngine): void {
  portable.set(engine, e);
}

function entry(engine: TargetEngineName): PortableEngine {
  const e = portable.get(engine);
  if (!e) throw new UsageError(`no target another process can open for --engine ${engine} (known: ${[...portable.keys()].join(', ')})`);
  return e;
}

export function makePortableTarget(engines: Engines, engine: TargetEngineName, dir: string, label: string): Promise<PortableTarget> {
  return entry(engine).make(engines, dir, label);
}

export function openPortableTarget(target: PortableTarget, opts: { applicationName?: string } = {}): Promise<SqlEngine> {
  return entry(target.engine).open(target, opts);
}

/** Whether a killed writer's transaction stays open on this target until someone aborts it. */
export function killLeavesTransactionOpen(target: PortableTarget): boolean {
  return entry(target.engine).killLeavesTransactionOpen ?? false;
}

/** For messages: the descriptor without secrets. */
export function describePortableTarget(target: PortableTarget): string {
  return entry(target.engine).describe(target);
}

registerPortableTarget('duckdb', {
  make: async (_engines, dir, label) => ({ engine: 'duckdb', path: join(dir, `${label}-${randomBytes(3).toString('hex')}.duckdb`) }),
  open: (t) => DuckDbEngine.open((t as { path: string }).path),
  describe: (t) => `duckdb:${(t as { path: string }).path}`,
});
registerPortableTarget('postgres', {
  make: async (engines, _dir, label) => ({ engine: 'postgres', url: await engines.freshPgDatabase(label) }),
  open: (t, o) => PgEngine.connect((t as { url: string }).url, o.applicationName ? { applicationName: o.applicationName } : undefined),
  describe: (t) => `postgres:${new URL((t as { url: string }).url).pathname.slice(1)}`,
});
// Imported on first use: runs on other engines never load snowflake-sdk.
registerPortableTarget('snowflake', {
  make: async (engines, _dir, label) => ({ engine: 'snowflake', connection: await (await import('./snowflake/target.ts')).createSnowflakeTarget(engines, label) }),
  open: async (t) => (await import('./snowflake/target.ts')).connectSnowflakeTarget((t as { connection: Record<string, string> }).connection),
  describe: () => 'snowflake',
  killLeavesTransactionOpen: true,
});
