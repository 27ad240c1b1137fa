import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SupervisedProcess } from './supervised.ts';
import { DuckDbEngine } from './duckdb/driver.ts';
import { PgEngine } from './postgres/driver.ts';
import { provisionPostgres, type PostgresServer } from './postgres/provision.ts';
import { provisionKafka, type KafkaServer } from './kafka/provision.ts';
import type { ProvisionMode } from './provision-mode.ts';
import type { SqlEngine, TargetEngineName } from './types.ts';
import { UsageError } from '../errors.ts';

export type { SqlEngine, TargetEngineName, Row, SqlValue, Dialect } from './types.ts';
export type { ProvisionMode } from './provision-mode.ts';
export { DuckDbEngine, PgEngine };
export type { PostgresServer, KafkaServer };

/**
 * Opens a target engine (a fresh, empty database on it) for a lab. Each engine registers itself
 * here; labs ask `engines.target(name)` and never branch on the engine's name.
 */
export type TargetFactory = (engines: Engines, label: string) => Promise<SqlEngine>;
const targetFactories = new Map<TargetEngineName, TargetFactory>();
/** Targets that may run on a stand-in for the real service: whether this engine set's one is. */
const targetEmulation = new Map<TargetEngineName, (engines: Engines) => Promise<boolean>>();
export function registerTarget(name: TargetEngineName, factory: TargetFactory, emulated?: (engines: Engines) => Promise<boolean>): void {
  targetFactories.set(name, factory);
  if (emulated) targetEmulation.set(name, emulated);
}
registerTarget('duckdb', async () => DuckDbEngine.open(':memory:'));
registerTarget('postgres', async (engines, label) => PgEngine.connect(await engines.freshPgDatabase(label)));
// Imported on first use: runs that never target Snowflake do not load snowflake-sdk nor start its emulator.
// Its provider is the fakesnow emulator unless a real account is configured: timings then say nothing about Snowflake.
registerTarget(
  'snowflake',
  async (engines, label) => (await import('./snowflake/target.ts')).openSnowflakeTarget(engines, label),
  async (engines) => (await engines.providers()).snowflake?.startsWith('emulator') ?? true,
);

// Spark (Delta Lake tables), imported on first use too: a local cluster starts with the first target.
registerTarget('spark', async (engines, label) => (await import('./spark/target.ts')).SparkTarget.open(engines, label));

export interface EnginesOptions {
  mode: ProvisionMode;
  env?: NodeJS.ProcessEnv;
  log?: (message: string) => void;
}

/**
 * The engine set of one run: servers are provisioned lazily, once, on first use, and
 * `stopAll()` stops everything this run started (servers, connections, temp databases).
 */
export class Engines {
  readonly mode: ProvisionMode;
  readonly env: NodeJS.ProcessEnv;
  readonly log: (message: string) => void;
  /** Unique per run: prefixes databases and topics so runs sharing a server never collide. */
  readonly runId = `r${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  private pgServer?: Promise<PostgresServer>;
  private kafkaServer?: Promise<KafkaServer>;
  private readonly closers: (() => Promise<void>)[] = [];
  private readonly tempDatabases: string[] = [];
  private stopped = false;
  /** Providers of engines registered outside this class (e.g. snowflake), for `providers()`. */
  readonly providerNotes: Record<string, string> = {};
  /**
   * Called with every statement sent through a handle this engine set gave out (`target`, `pg`,
   * `pgAdmin`, `duckdb`): how a lab run shows each step's SQL. Child processes' SQL is not seen.
   */
  onStatement: ((sql: string) => void) | null = null;
  private runDir?: { path: string; guard: SupervisedProcess };

  constructor(options: EnginesOptions) {
    this.mode = options.mode;
    this.env = options.env ?? process.env;
    this.log = options.log ?? ((m) => process.stderr.write(m + '\n'));
  }

  postgres(): Promise<PostgresServer> {
    this.pgServer ??= provisionPostgres(this.mode, this.env, this.log);
    return this.pgServer;
  }

  kafka(): Promise<KafkaServer> {
    this.kafkaServer ??= provisionKafka(this.mode, this.env, this.log);
    return this.kafkaServer;
  }

  /**
   * A fresh temp dir for this run (under one run dir per engine set). Removed by `stopAll()`,
   * and by a guard process if this process is killed before it can clean up.
   */
  tempDir(label: string): string {
    if (!this.runDir) {
      const path = mkdtempSync(join(tmpdir(), 'de-lab-run-'));
      this.runDir = { path, guard: SupervisedProcess.guardDirs([path]) };
    }
    const dir = mkdtempSync(join(this.runDir.path, `${label.replace(/[^a-z0-9_-]/gi, '_')}-`));
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** Which provider served each engine provisioned so far (for the JSON report). */
  async providers(): Promise<Record<string, string>> {
    const out: Record<string, string> = { duckdb: 'in-process' };
    Object.assign(out, this.providerNotes);
    if (this.pgServer) out.postgres = (await this.pgServer.catch(() => null))?.provider ?? 'failed';
    if (this.kafkaServer) out.kafka = (await this.kafkaServer.catch(() => null))?.provider ?? 'failed';
    return out;
  }

  /**
   * Whether target `name` ran on an emulator in this engine set (its figures are then the
   * emulator's, not the service's); null for a target that has none — it is the real engine.
   */
  async emulated(name: TargetEngineName): Promise<boolean | null> {
    const emulation = targetEmulation.get(name);
    return emulation ? emulation(this) : null;
  }

  /** Registers a cleanup run by `stopAll()` (connections, consumers, child processes). */
  onStop(close: () => Promise<void>): void {
    this.closers.push(close);
  }

  async duckdb(path = ':memory:'): Promise<DuckDbEngine> {
    const db = await DuckDbEngine.open(path);
    this.onStop(() => db.close());
    return this.observed(db);
  }

  /** `db` with its statements reported to `onStatement` (transactions included); everything else as it is. */
  private observed<E extends SqlEngine>(db: E): E {
    const report = (sql: string) => this.onStatement?.(sql);
    const wrap = <T extends SqlEngine>(inner: T): T =>
      new Proxy(inner, {
        get(target, prop) {
          if (prop === 'query' || prop === 'exec') {
            const fn = target[prop].bind(target) as (sql: string, params?: readonly unknown[]) => Promise<unknown>;
            return (sql: string, params?: readonly unknown[]) => (report(sql), fn(sql, params));
          }
          if (prop === 'transaction') return <R>(fn: (tx: SqlEngine) => Promise<R>) => target.transaction((tx) => fn(wrap(tx)));
          const v = Reflect.get(target, prop, target);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    return wrap(db);
  }

  /** A connection to the server's admin database. */
  async pgAdmin(): Promise<PgEngine> {
    const db = await PgEngine.connect((await this.postgres()).url);
    this.onStop(() => db.close());
    return this.observed(db);
  }

  /** Creates an empty database for this run and returns its URL; dropped at `stopAll()`. */
  async freshPgDatabase(label: string): Promise<string> {
    const server = await this.postgres();
    const name = this.freshName(label);
    const admin = await PgEngine.connect(server.url);
    try {
      await admin.exec(`CREATE DATABASE ${name}`);
    } finally {
      await admin.close();
    }
    this.tempDatabases.push(name);
    const u = new URL(server.url);
    u.pathname = `/${name}`;
    return u.toString();
  }

  /** A Postgres connection to a database (default: a fresh one for this run). */
  async pg(url?: string, label = 'db'): Promise<PgEngine> {
    const db = await PgEngine.connect(url ?? (await this.freshPgDatabase(label)));
    this.onStop(() => db.close());
    return this.observed(db);
  }

  /** A fresh, empty database on a target engine. */
  async target(name: TargetEngineName, label = 'target'): Promise<SqlEngine> {
    const factory = targetFactories.get(name);
    if (!factory) throw new UsageError(`--engine ${name} is not available (known: ${[...targetFactories.keys()].join(', ')})`);
    const engine = await factory(this, label);
    this.onStop(() => engine.close());
    return this.observed(engine);
  }

  private freshNames = 0;
  /**
   * A new name for a database or schema a target makes for this run, `<runId>_<label>_<n>`, lower
   * case (Postgres databases, Spark databases; Snowflake upper-cases it): never the same twice.
   */
  freshName(label: string): string {
    return `${this.runId}_${label}_${this.freshNames++}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  }

  /** Topic/group/slot names unique to this run. */
  name(base: string): string {
    return `${this.runId}_${base}`.toLowerCase().replace(/[^a-z0-9_.-]/g, '_');
  }

  async stopAll(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const close of this.closers.reverse()) await close().catch(() => undefined);
    const pg = await this.pgServer?.catch(() => null);
    if (pg && this.tempDatabases.length > 0 && pg.provider !== 'local') {
      // Someone else's server: leave it as we found it.
      const admin = await PgEngine.connect(pg.url).catch(() => null);
      for (const name of this.tempDatabases) await admin?.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await admin?.close();
    }
    await Promise.all([pg?.stop(), (await this.kafkaServer?.catch(() => null))?.stop()]);
    if (this.runDir) {
      rmSync(this.runDir.path, { recursive: true, force: true });
      await this.runDir.guard.stop();
    }
  }
}
