/**
 * Where the apply side writes: a serializable descriptor, so a child process (the apply
 * consumer) can open the same target the lab created. One opener per engine; an engine added
 * later (snowflake) registers its own descriptor shape and opener here.
 *
 * DuckDB is single-writer across processes: while an apply process has the file open, nobody
 * else can open it — the lab stops the apply process before it reads the target.
 */
import { DuckDbEngine } from '../engines/duckdb/driver.ts';
import { PgEngine } from '../engines/postgres/driver.ts';
import type { SqlEngine, TargetEngineName } from '../engines/types.ts';
import { UsageError } from '../errors.ts';

export type CdcTarget =
  | { engine: 'duckdb'; path: string }
  | { engine: 'postgres'; url: string }
  /** Reserved for the Snowflake engine (issue 8): connection options as plain JSON. */
  | { engine: 'snowflake'; connection: Record<string, string> };

export type TargetOpener = (target: CdcTarget) => Promise<SqlEngine>;

const openers = new Map<TargetEngineName, TargetOpener>();

export function registerCdcTarget(engine: TargetEngineName, open: TargetOpener): void {
  openers.set(engine, open);
}

registerCdcTarget('duckdb', (t) => DuckDbEngine.open((t as { path: string }).path));
registerCdcTarget('postgres', (t) => PgEngine.connect((t as { url: string }).url, { applicationName: 'de-lab-cdc-apply' }));
// Imported on first use: runs on other engines never load snowflake-sdk. The descriptor is
// createSnowflakeTarget's (no secrets: a real account's are read from SNOWFLAKE_* here).
registerCdcTarget('snowflake', async (t) => (await import('../engines/snowflake/target.ts')).connectSnowflakeTarget((t as { connection: Record<string, string> }).connection));

export function openCdcTarget(target: CdcTarget): Promise<SqlEngine> {
  const open = openers.get(target.engine);
  if (!open) throw new UsageError(`cdc: no apply target for --engine ${target.engine} (known: ${[...openers.keys()].join(', ')})`);
  return open(target);
}

/** For messages: the descriptor without secrets. */
export function describeCdcTarget(target: CdcTarget): string {
  if (target.engine === 'duckdb') return `duckdb:${target.path}`;
  if (target.engine === 'postgres') return `postgres:${new URL(target.url).pathname.slice(1)}`;
  return target.engine;
}
