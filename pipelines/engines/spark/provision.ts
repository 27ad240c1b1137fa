/**
 * Apache Spark for the spark engine: a Spark Connect server (the driver) on a standalone cluster
 * of one master and two one-core workers, all on loopback, each JVM under our supervisor, in a
 * temp dir of its own removed when the run ends. Or, with SPARK_REMOTE=sc://host:port, a cluster
 * someone else runs.
 *
 * The jars come from PyPI's pyspark wheel (it ships Spark's jars/, spark-connect included),
 * installed once by scripts/ci.d/spark.sh into a virtualenv under ~/.cache/de-lab. Only the jars
 * are used: every process here is `java -cp jars/*`, no Python, no spark-submit shell scripts.
 * Delta Lake (delta-spark + delta-storage, Maven Central, scripts/delta/pom.xml) joins that class
 * path, its SQL extension and catalog configured: `USING delta`, OPTIMIZE, MERGE, time travel.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JVM_BASE, deLabCache, resolveFromMaven } from '../jvm.ts';
import { EngineUnavailableError } from '../../errors.ts';
import { freePort, tcpAnswers, waitUntil } from '../ports.ts';
import { SupervisedProcess } from '../supervised.ts';
import type { ProvisionMode, ProvisionedServer } from '../provision-mode.ts';

/**
 * The Spark version scripts/ci.d/spark.sh installs (PyPI pyspark) and this code was checked against:
 * 4.2.1, not PyPI's newest (4.3.0), because Delta Lake's newest release is built against Spark 4.2.
 */
export const SPARK_VERSION = '4.2.1';
/** Delta Lake for that Spark (delta-spark 4.4.0's pom names spark-sql 4.2.0). */
export const DELTA_VERSION = '4.4.0';
const INSTALLER = fileURLToPath(new URL('../../../scripts/ci.d/spark.sh', import.meta.url));
const DELTA_POM = fileURLToPath(new URL('../../../scripts/delta/pom.xml', import.meta.url));

/** The Delta Lake jars' folder, resolved from Maven Central once (scripts/delta/pom.xml). */
export function ensureDeltaJars(env: NodeJS.ProcessEnv = process.env, log: (m: string) => void = () => undefined): string {
  const dest = resolveFromMaven(
    {
      engine: 'Spark',
      what: `Delta Lake ${DELTA_VERSION} (delta-spark, delta-storage)`,
      pom: DELTA_POM,
      dest: join(cacheDir(env), `delta-${DELTA_VERSION}`),
      complete: (d) => {
        const jars = existsSync(join(d, 'jars')) ? readdirSync(join(d, 'jars')) : [];
        return [`delta-spark_2.13-${DELTA_VERSION}.jar`, `delta-storage-${DELTA_VERSION}.jar`].every((j) => jars.includes(j));
      },
      // The version is this file's: the pom's own is only a default.
      args: (out) => ['package', `-Dout=${out}`, `-Ddelta.version=${DELTA_VERSION}`],
      otherwise: 'install Maven (the spark engine takes Delta Lake from Maven Central), or set SPARK_REMOTE',
    },
    env,
    log,
  );
  return join(dest, 'jars');
}

/** The local cluster's shape: small, the machine is shared (2 cores). */
export const LOCAL_CLUSTER = { workers: 2, coresPerWorker: 1, workerMemoryMb: 640, executorMemoryMb: 512, driverMemoryMb: 768 } as const;

export interface SparkServer extends ProvisionedServer {
  /** Spark Connect endpoint, `sc://host:port`. */
  remote: string;
  /** The driver's web UI, whose REST API (/api/v1) serves per-task metrics; null when unknown (external without SPARK_UI_URL). */
  uiUrl: string | null;
  /** Standalone master (local cluster only). */
  masterUrl: string | null;
  masterUiUrl: string | null;
  /** Jars of the Spark this client talks to: where the .proto files come from. */
  jarsDir: string;
  version: string;
  /** For reports: 'local standalone (1 master + 2 workers × 1 core), Spark 4.2.1 + Delta Lake 4.4.0' or 'external sc://…'. */
  label: string;
  /** Worker processes (local only): the retry trap kills an executor of one. */
  workers: { pid: number | null; workDir: string }[];
  /** Cluster start: first JVM spawned → Connect server answers and every executor registered, ms. */
  startupMs: number;
  /**
   * Local only: SIGKILL the driver (the Connect server, where every commit is made) as a crash
   * would, then start a new one on the same port and wait for its executors. Every session of the
   * old driver is gone (its temp views, its settings, the in-memory catalog); tables written by
   * path survive. `generation` counts the drivers.
   */
  crashDriver?(): Promise<{ restartMs: number }>;
  generation: number;
}

/** The de-lab cache (DE_LAB_CACHE, else $XDG_CACHE_HOME/de-lab, else ~/.cache/de-lab). */
export const cacheDir = deLabCache;

/** SPARK_HOME inside the pyspark virtualenv, or null when not installed. */
export function installedSparkHome(env: NodeJS.ProcessEnv = process.env): string | null {
  const venv = join(cacheDir(env), `pyspark-${SPARK_VERSION}`);
  if (!existsSync(join(venv, '.complete'))) return null;
  const lib = join(venv, 'lib');
  for (const py of existsSync(lib) ? readdirSync(lib) : []) {
    const home = join(lib, py, 'site-packages', 'pyspark');
    if (existsSync(join(home, 'jars'))) return home;
  }
  return null;
}

/** SPARK_HOME of the cached Spark, installing it first (once: scripts/ci.d/spark.sh) when missing. */
export function ensureSparkHome(env: NodeJS.ProcessEnv = process.env, log: (m: string) => void = () => undefined): string {
  const found = installedSparkHome(env);
  if (found) return found;
  log(`Spark: installing pyspark ${SPARK_VERSION} (Spark's jars) into ${join(cacheDir(env), `pyspark-${SPARK_VERSION}`)} — once, ~520 MB`);
  const r = spawnSync('bash', [INSTALLER], { encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const home = installedSparkHome(env);
  if (r.status !== 0 || !home) {
    const why = (r.stderr || r.stdout || '').trim().split('\n').slice(-1)[0];
    throw new EngineUnavailableError(`Spark: SPARK_REMOTE unset and Spark ${SPARK_VERSION} could not be installed from PyPI (${why || `exit ${r.status}`}) — run "bash scripts/ci.d/spark.sh", or set SPARK_REMOTE=sc://host:15002`);
  }
  return home;
}

/** The spark-connect jar among `jarsDir` (holds spark/connect/*.proto). */
export function connectJar(jarsDir: string): string {
  const jar = readdirSync(jarsDir).find((f) => /^spark-connect_[\d.]+-.*\.jar$/.test(f));
  if (!jar) throw new EngineUnavailableError(`Spark: no spark-connect_*.jar in ${jarsDir}`);
  return join(jarsDir, jar);
}

export async function provisionSpark(mode: ProvisionMode, env: NodeJS.ProcessEnv, log: (m: string) => void): Promise<SparkServer> {
  const remote = env.SPARK_REMOTE;
  if (mode === 'external' || (mode === 'auto' && remote)) {
    if (!remote) throw new EngineUnavailableError('Spark: --provision external needs SPARK_REMOTE (e.g. sc://localhost:15002)');
    return external(remote, env, log);
  }
  return startLocal(env, log);
}

async function external(remote: string, env: NodeJS.ProcessEnv, log: (m: string) => void): Promise<SparkServer> {
  const m = /^sc:\/\/([^:/]+):(\d+)\/?(;.*)?$/.exec(remote);
  if (!m) throw new EngineUnavailableError(`Spark: SPARK_REMOTE=${remote} is not sc://host:port`);
  const [host, port] = [m[1]!, Number(m[2])];
  if (!(await tcpAnswers(host, port, 3000))) throw new EngineUnavailableError(`Spark: SPARK_REMOTE=${remote} does not answer`);
  // The client's protocol comes from the local jars (the .proto files); the server's version must match closely.
  const jarsDir = join(ensureSparkHome(env, log), 'jars');
  const uiUrl = env.SPARK_UI_URL ?? null;
  if (!uiUrl) log('Spark: SPARK_UI_URL unset — per-task metrics (REST API) unavailable for an external cluster');
  return { provider: 'external', remote: `sc://${host}:${port}`, uiUrl, masterUrl: null, masterUiUrl: null, jarsDir, version: SPARK_VERSION, label: `external ${remote}`, workers: [], startupMs: 0, generation: 0, stop: async () => undefined };
}

/**
 * Every JVM: no hsperfdata (/tmp/hsperfdata_<user>), its temp files in the run's dir, serial GC
 * (two cores shared by five JVMs).
 */
const jvmBase = (dir: string) => [...JVM_BASE, '-XX:+UseSerialGC', `-Djava.io.tmpdir=${dir}`, ...MODULE_OPTIONS];

/**
 * What Spark's launcher scripts add to every JVM on Java 17 (org.apache.spark.launcher.JavaModuleOptions):
 * Arrow, Netty and Kryo reach into java.base. We start `java` ourselves, so we add them.
 */
const MODULE_OPTIONS = [
  '-XX:+IgnoreUnrecognizedVMOptions',
  ...['java.lang', 'java.lang.invoke', 'java.lang.reflect', 'java.io', 'java.net', 'java.nio', 'java.util', 'java.util.concurrent', 'java.util.concurrent.atomic', 'jdk.internal.ref', 'sun.nio.ch', 'sun.nio.cs', 'sun.security.action', 'sun.util.calendar'].map(
    (p) => `--add-opens=java.base/${p}=ALL-UNNAMED`,
  ),
  '-Djdk.reflect.useDirectMethodHandle=false',
  '-Dio.netty.tryReflectionSetAccessible=true',
];

const LOG4J2 = [
  'rootLogger.level = warn',
  'rootLogger.appenderRef.stderr.ref = stderr',
  'appender.stderr.type = Console',
  'appender.stderr.name = stderr',
  'appender.stderr.target = SYSTEM_ERR',
  'appender.stderr.layout.type = PatternLayout',
  'appender.stderr.layout.pattern = %d{HH:mm:ss.SSS} %p %c{1}: %m%n%ex{5}',
  // Spark warns once per JVM that Hadoop's native library is absent: noise.
  'logger.nativecode.name = org.apache.hadoop.util.NativeCodeLoader',
  'logger.nativecode.level = error',
  '',
].join('\n');

async function json<T>(url: string): Promise<T | null> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return r.ok ? ((await r.json()) as T) : null;
  } catch {
    return null;
  }
}

async function startLocal(env: NodeJS.ProcessEnv, log: (m: string) => void): Promise<SparkServer> {
  const java = spawnSync('java', [...JVM_BASE, '-version'], { encoding: 'utf8' });
  const major = Number(/version "(\d+)/.exec(java.stderr ?? '')?.[1] ?? 0);
  if (java.error || major < 17) {
    throw new EngineUnavailableError(`Spark: SPARK_REMOTE unset and ${java.error ? 'Java 17+ not found' : `Java ${major} found, 17+ needed`} — install Java 17, or set SPARK_REMOTE=sc://host:15002`);
  }
  const home = ensureSparkHome(env, log);
  const jarsDir = join(home, 'jars');
  const deltaJars = ensureDeltaJars(env, log);
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'de-lab-spark-'));
  const conf = join(dir, 'conf');
  mkdirSync(conf);
  writeFileSync(join(conf, 'log4j2.properties'), LOG4J2);
  const [masterPort, masterUi, connectPort, driverUi] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const cp = `${conf}:${jarsDir}/*:${deltaJars}/*`;
  // SPARK_SCALA_VERSION: without a RELEASE file (the wheel has none) the launcher that builds an
  // executor's command line looks for a source build's target/ folders and fails.
  const base = { SPARK_HOME: home, SPARK_SCALA_VERSION: '2.13', SPARK_LOCAL_IP: '127.0.0.1', SPARK_CONF_DIR: conf, SPARK_NO_DAEMONIZE: '1' };
  const procs: SupervisedProcess[] = [];
  // Each supervisor removes the dir once its JVM is gone: the last one out leaves nothing behind,
  // whichever order they stop in (a killed run stops them all at once).
  const start = (name: string, args: string[], extraEnv: Record<string, string> = {}, cleanup = [dir]) => {
    const p = SupervisedProcess.start({ cmd: 'java', args, env: { ...base, ...extraEnv }, cwd: dir, stopSignal: 'SIGTERM', stopTimeoutMs: 8000, cleanup, logFile: join(dir, `${name}.log`) });
    procs.push(p);
    return p;
  };
  const stop = async () => {
    // Driver first, then the workers (each takes its executors along), the master last.
    for (const p of [...procs].reverse()) await p.stop();
  };
  const fail = async (err: unknown): Promise<never> => {
    await stop();
    throw err;
  };

  const masterUrl = `spark://127.0.0.1:${masterPort}`;
  const masterUiUrl = `http://127.0.0.1:${masterUi}`;
  const master = start('master', [...jvmBase(dir), '-Xmx192m', '-cp', cp, 'org.apache.spark.deploy.master.Master', '--host', '127.0.0.1', '--port', String(masterPort), '--webui-port', String(masterUi)]);
  await waitUntil(
    async () => (await json(`${masterUiUrl}/json/`)) !== null,
    60_000,
    () => new EngineUnavailableError(`Spark: standalone master did not start on ${masterUrl} (${master.deathReason ?? 'timeout'}): ${master.logTail(3)}`),
    () => master.deathReason,
  ).catch(fail);

  const workers: { proc: SupervisedProcess; workDir: string }[] = [];
  for (let w = 0; w < LOCAL_CLUSTER.workers; w++) {
    const workDir = join(dir, `worker${w}`);
    mkdirSync(workDir);
    const args = [...jvmBase(dir), '-Xmx192m', '-cp', cp, 'org.apache.spark.deploy.worker.Worker', '--host', '127.0.0.1', '--cores', String(LOCAL_CLUSTER.coresPerWorker), '--memory', `${LOCAL_CLUSTER.workerMemoryMb}m`, '--work-dir', workDir, '--webui-port', '0', masterUrl];
    workers.push({ proc: start(`worker${w}`, args, { SPARK_LOCAL_DIRS: workDir }), workDir });
  }

  const driverLocal = join(dir, 'driver');
  mkdirSync(driverLocal);
  const confs: Record<string, string> = {
    'spark.app.name': 'de-lab',
    'spark.master': masterUrl,
    'spark.connect.grpc.binding.address': '127.0.0.1',
    'spark.connect.grpc.binding.port': String(connectPort),
    'spark.ui.port': String(driverUi),
    'spark.driver.host': '127.0.0.1',
    'spark.driver.bindAddress': '127.0.0.1',
    'spark.executor.memory': `${LOCAL_CLUSTER.executorMemoryMb}m`,
    'spark.executor.cores': String(LOCAL_CLUSTER.coresPerWorker),
    'spark.cores.max': String(LOCAL_CLUSTER.workers * LOCAL_CLUSTER.coresPerWorker),
    'spark.executor.extraJavaOptions': jvmBase(dir).join(' '),
    'spark.sql.warehouse.dir': join(dir, 'warehouse'),
    // The REST API serves the tasks of recent stages only: keep every stage of a lab run.
    'spark.ui.retainedStages': '5000',
    'spark.ui.retainedJobs': '5000',
    'spark.sql.ui.retainedExecutions': '5000',
    'spark.ui.showConsoleProgress': 'false',
    // Task retries on a dead executor: the retry trap wants the cluster to recover, not give up.
    'spark.task.maxFailures': '8',
    // Delta Lake: its SQL (OPTIMIZE, DESCRIBE HISTORY, VERSION AS OF) and its catalog, which still
    // serves plain `USING parquet` tables as Spark's own does.
    'spark.sql.extensions': 'io.delta.sql.DeltaSparkSessionExtension',
    'spark.sql.catalog.spark_catalog': 'org.apache.spark.sql.delta.catalog.DeltaCatalog',
    // Partitions sized to the cluster's cores, not to a big one's: by default a join or aggregate
    // shuffles into 200 and Delta replays a table's log into 50 — that many tasks per statement on
    // two cores (a Delta MERGE test: 50 s with 200, 30 s with 2). The skew lab sets its own P.
    'spark.sql.shuffle.partitions': String(LOCAL_CLUSTER.workers * LOCAL_CLUSTER.coresPerWorker),
    'spark.databricks.delta.snapshotPartitions': String(LOCAL_CLUSTER.workers * LOCAL_CLUSTER.coresPerWorker),
    // Listing a directory tree in parallel (CONVERT TO DELTA, VACUUM) runs one stage of up to 10,000
    // tasks by default: a VACUUM of 170 files took 50–72 s here, 3 s with 2.
    'spark.sql.sources.parallelPartitionDiscovery.parallelism': String(LOCAL_CLUSTER.workers * LOCAL_CLUSTER.coresPerWorker),
    // Executors get the same class path as the driver (the workers' own is Spark's jars only).
    'spark.executor.extraClassPath': `${deltaJars}/*`,
  };
  const connectArgs = [
    ...jvmBase(dir),
    `-Xmx${LOCAL_CLUSTER.driverMemoryMb}m`,
    '-cp',
    cp,
    'org.apache.spark.deploy.SparkSubmit',
    '--class',
    'org.apache.spark.sql.connect.service.SparkConnectServer',
    ...Object.entries(confs).flatMap(([k, v]) => ['--conf', `${k}=${v}`]),
    'spark-internal',
  ];
  // The driver removes only its own local dir when it dies: a crashed driver (crashDriver) must
  // not take the cluster's conf and the workers' dirs with it. The others remove the whole dir.
  const startConnect = (n: number) => start(n === 0 ? 'connect' : `connect${n}`, connectArgs, { SPARK_LOCAL_DIRS: driverLocal }, []);
  let connect = startConnect(0);
  const uiUrl = `http://127.0.0.1:${driverUi}`;
  const ready = async (appsBefore: string | null) => {
    let executors = 0;
    await waitUntil(
      async () => {
        if (!(await tcpAnswers('127.0.0.1', connectPort, 500))) return false;
        const apps = await json<{ id: string }[]>(`${uiUrl}/api/v1/applications`);
        if (!apps?.[0] || apps[0].id === appsBefore) return false;
        const ex = await json<{ id: string; isActive: boolean }[]>(`${uiUrl}/api/v1/applications/${apps[0].id}/executors`);
        executors = (ex ?? []).filter((e) => e.id !== 'driver' && e.isActive).length;
        return executors === LOCAL_CLUSTER.workers;
      },
      120_000,
      () => {
        const who = [master, ...workers.map((w) => w.proc), connect].find((p) => p.deathReason) ?? connect;
        return new EngineUnavailableError(
          `Spark: local cluster not ready (Connect server on 127.0.0.1:${connectPort}, ${executors}/${LOCAL_CLUSTER.workers} executors; ${who.deathReason ?? 'timeout'}): ${who.logTail(3)}`,
        );
      },
      () => [master, ...workers.map((w) => w.proc), connect].map((p) => p.deathReason).find((d) => d) ?? null,
    );
  };
  await ready(null).catch(fail);
  const startupMs = Date.now() - t0;
  log(`Spark: local standalone cluster (Spark ${SPARK_VERSION} + Delta Lake ${DELTA_VERSION}, 1 master + ${LOCAL_CLUSTER.workers} workers × ${LOCAL_CLUSTER.coresPerWorker} core) ready in ${startupMs} ms — Spark Connect sc://127.0.0.1:${connectPort}, Spark UI ${uiUrl}, master UI ${masterUiUrl}`);
  const server: SparkServer = {
    provider: 'local',
    remote: `sc://127.0.0.1:${connectPort}`,
    uiUrl,
    masterUrl,
    masterUiUrl,
    jarsDir,
    version: SPARK_VERSION,
    label: `local standalone (1 master + ${LOCAL_CLUSTER.workers} workers × ${LOCAL_CLUSTER.coresPerWorker} core), Spark ${SPARK_VERSION} + Delta Lake ${DELTA_VERSION}`,
    workers: workers.map((w) => ({ pid: w.proc.serverPid, workDir: w.workDir })),
    startupMs,
    stop,
    pid: connect.serverPid ?? undefined,
    dir,
    generation: 0,
    async crashDriver() {
      const apps = await json<{ id: string }[]>(`${uiUrl}/api/v1/applications`);
      const old = connect;
      await old.killServer();
      const t1 = Date.now();
      connect = startConnect(server.generation + 1);
      procs[procs.indexOf(old)] = connect;
      server.generation += 1;
      server.pid = connect.serverPid ?? undefined;
      await ready(apps?.[0]?.id ?? null);
      return { restartMs: Date.now() - t1 };
    },
  };
  return server;
}
