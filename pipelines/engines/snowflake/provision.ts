import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deLabCache } from '../jvm.ts';
import { EngineUnavailableError } from '../../errors.ts';
import { freePort, tcpAnswers, waitUntil } from '../ports.ts';
import { SupervisedProcess } from '../supervised.ts';
import type { ProvisionMode, ProvisionedServer } from '../provision-mode.ts';
import type { SnowflakeConnectionOptions } from './driver.ts';

/** The emulator version CI installs (scripts/ci.d/fakesnow.sh) and this code was checked against. */
export const FAKESNOW_VERSION = '0.12.1';
const LAUNCHER = fileURLToPath(new URL('./fakesnow_server.py', import.meta.url));

export interface SnowflakeServer extends ProvisionedServer {
  /** Account connection without database/schema; targets add a fresh schema each. */
  connection: SnowflakeConnectionOptions;
  /** Database the per-run schemas are created in. */
  database: string;
  /** For reports: 'snowflake account <acct>' or 'emulator (fakesnow x.y.z)'. */
  label: string;
  emulator: boolean;
}

/** The env a real account needs; all of them, or the emulator is used. */
export const SNOWFLAKE_ENV = ['SNOWFLAKE_ACCOUNT', 'SNOWFLAKE_USER', 'SNOWFLAKE_WAREHOUSE', 'SNOWFLAKE_DATABASE', 'SNOWFLAKE_SCHEMA'] as const;

/**
 * Provider order: a real account when SNOWFLAKE_ACCOUNT is set (then user, auth — password or
 * key pair — warehouse, database and schema must be set too: a half-configured account is an
 * error, not a silent fallback to the emulator); otherwise the fakesnow emulator, started on a
 * free loopback port under our supervisor (same lifecycle as the local Postgres and Kafka).
 */
export async function provisionSnowflake(mode: ProvisionMode, env: NodeJS.ProcessEnv, log: (m: string) => void): Promise<SnowflakeServer> {
  if (env[HANDOVER_ENV]) return adopt(env[HANDOVER_ENV]!);
  if (env.SNOWFLAKE_ACCOUNT && mode !== 'local') return realAccount(env);
  if (mode === 'external') {
    throw new EngineUnavailableError(`Snowflake: --provision external needs ${SNOWFLAKE_ENV.join(', ')} and SNOWFLAKE_PASSWORD or SNOWFLAKE_PRIVATE_KEY_PATH`);
  }
  return startEmulator(env, log);
}

/**
 * A provider started by a parent process (the test run's global setup) and handed to child
 * engine sets through the environment, as PG_URL and KAFKA_BROKERS are. The parent stops it.
 */
export const HANDOVER_ENV = 'DE_LAB_SNOWFLAKE_SERVER';

export function handover(server: SnowflakeServer): string {
  const { connection, database, label, emulator, provider } = server;
  return JSON.stringify({ connection, database, label, emulator, provider });
}

function adopt(json: string): SnowflakeServer {
  const s = JSON.parse(json) as Omit<SnowflakeServer, 'stop'>;
  return { ...s, stop: async () => undefined };
}

function realAccount(env: NodeJS.ProcessEnv): SnowflakeServer {
  const missing: string[] = SNOWFLAKE_ENV.filter((k) => !env[k]);
  if (!env.SNOWFLAKE_PASSWORD && !env.SNOWFLAKE_PRIVATE_KEY_PATH) missing.push('SNOWFLAKE_PASSWORD or SNOWFLAKE_PRIVATE_KEY_PATH');
  if (missing.length > 0) throw new EngineUnavailableError(`Snowflake: SNOWFLAKE_ACCOUNT is set but ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not`);
  return {
    provider: 'external',
    emulator: false,
    label: `snowflake account ${env.SNOWFLAKE_ACCOUNT}`,
    database: env.SNOWFLAKE_DATABASE!,
    connection: {
      account: env.SNOWFLAKE_ACCOUNT!,
      username: env.SNOWFLAKE_USER!,
      password: env.SNOWFLAKE_PASSWORD,
      privateKeyPath: env.SNOWFLAKE_PRIVATE_KEY_PATH,
      privateKeyPass: env.SNOWFLAKE_PRIVATE_KEY_PASSPHRASE,
      warehouse: env.SNOWFLAKE_WAREHOUSE,
      role: env.SNOWFLAKE_ROLE,
      database: env.SNOWFLAKE_DATABASE,
      schema: env.SNOWFLAKE_SCHEMA,
    },
    stop: async () => undefined,
  };
}

/** The emulator's Python: FAKESNOW_PYTHON, else the virtualenv scripts/ci.d/fakesnow.sh makes, else python3. */
export function fakesnowPython(env: NodeJS.ProcessEnv): string {
  if (env.FAKESNOW_PYTHON) return env.FAKESNOW_PYTHON;
  const venv = join(deLabCache(env), `fakesnow-${FAKESNOW_VERSION}`);
  if (existsSync(join(venv, '.complete'))) return join(venv, 'bin', 'python');
  return 'python3';
}

/** The installed fakesnow version, or null when Python or the package is missing. */
export function fakesnowVersion(env: NodeJS.ProcessEnv = process.env): string | null {
  // find_spec, not import: importing fakesnow makes a fakesnow_bucket_* dir in the temp dir (at module load) that nothing removes.
  const r = spawnSync(
    fakesnowPython(env),
    ['-c', 'import importlib.metadata as m, importlib.util as u, sys; sys.exit(1) if None in [u.find_spec(p) for p in ("fakesnow", "uvicorn", "starlette")] else print(m.version("fakesnow"))'],
    { encoding: 'utf8' },
  );
  return r.status === 0 ? r.stdout.trim() : null;
}

async function startEmulator(env: NodeJS.ProcessEnv, log: (m: string) => void): Promise<SnowflakeServer> {
  const version = fakesnowVersion(env);
  if (!version) {
    throw new EngineUnavailableError(
      `Snowflake: SNOWFLAKE_ACCOUNT unset and the fakesnow emulator is not installed for ${fakesnowPython(env)} — run "bash scripts/ci.d/fakesnow.sh" (installs fakesnow[server]==${FAKESNOW_VERSION} into ~/.cache/de-lab) or set SNOWFLAKE_* for a real account`,
    );
  }
  if (version !== FAKESNOW_VERSION) log(`Snowflake: fakesnow ${version} installed, de-lab was checked against ${FAKESNOW_VERSION}`);
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'de-lab-fakesnow-'));
  const port = await freePort();
  const logFile = join(dir, 'fakesnow.log');
  writeFileSync(logFile, '');
  const proc = SupervisedProcess.start({
    cmd: fakesnowPython(env),
    args: [LAUNCHER, '--host', '127.0.0.1', '--port', String(port)],
    cwd: dir, // stage files and any driver log land in the temp dir, removed on stop
    // TMPDIR: fakesnow makes its stage bucket (fakesnow_bucket_*) with tempfile at import; inside our dir, it goes with it.
    env: { PYTHONUNBUFFERED: '1', PYTHONWARNINGS: 'ignore', TMPDIR: dir },
    stopSignal: 'SIGINT', // uvicorn: graceful shutdown
    stopTimeoutMs: 5000,
    cleanup: [dir],
    logFile,
  });
  await waitUntil(
    () => tcpAnswers('127.0.0.1', port, 500),
    30000,
    () => new EngineUnavailableError(`Snowflake: fakesnow emulator did not become ready on 127.0.0.1:${port} (${proc.deathReason ?? 'timeout'}): ${proc.logTail(3)}`),
    () => proc.deathReason,
  ).catch(async (err) => {
    await proc.stop();
    throw err;
  });
  log(`Snowflake: fakesnow ${version} emulator on 127.0.0.1:${port} in ${Date.now() - t0} ms`);
  return {
    provider: 'local',
    emulator: true,
    label: `emulator (fakesnow ${version})`,
    database: 'DE_LAB',
    connection: { account: 'fakesnow', username: 'fake', password: 'snow', accessUrl: `http://127.0.0.1:${port}` },
    stop: () => proc.stop(),
    pid: proc.serverPid ?? undefined,
    dir,
  };
}
