/**
 * Real Debezium: the Debezium PostgreSQL connector on a Kafka Connect worker (standalone mode),
 * both from Maven Central (scripts/debezium/pom.xml), run with the local Java under the
 * project's supervisor like the broker. One worker per capture: its offsets file, its temp dir,
 * its REST port on loopback.
 *
 * Settings that matter (measured on a 2-core machine):
 *  - `plugin.discovery=service_load`: the worker does not scan every jar for plugins (~3.5 s less).
 *  - the producer tuned as our capture is (linger.ms=5, batch.size 1 MiB) and the connector's
 *    `max.batch.size=8192`: Debezium's defaults give 10–13k events/s here, these 14–18k.
 *  - `decimal.handling.mode=string`, JSON converters: the apply reads values it can store exactly.
 */
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EngineUnavailableError } from '../../errors.ts';
import { JVM_BASE, deLabCache, javaInfo, resolveFromMaven } from '../jvm.ts';
import { freePort, waitUntil } from '../ports.ts';
import { SupervisedProcess } from '../supervised.ts';

export const DEBEZIUM_VERSION = '3.6.1.Final';
export const CONNECT_VERSION = '3.9.1';
const POM = fileURLToPath(new URL('../../../scripts/debezium/pom.xml', import.meta.url));
const CONNECTOR = 'de-lab-debezium';

/** The worker's jars (`libs/`) and the connector plugin (`plugins/debezium-connector-postgres/`), fetched once. */
export function ensureDebeziumJars(env: NodeJS.ProcessEnv = process.env, log: (m: string) => void = () => undefined): string {
  return resolveFromMaven(
    {
      engine: 'Debezium',
      what: `Kafka Connect ${CONNECT_VERSION} and the Debezium PostgreSQL connector ${DEBEZIUM_VERSION}`,
      pom: POM,
      dest: join(deLabCache(env), `debezium-${DEBEZIUM_VERSION}`),
      complete: (d) =>
        existsSync(join(d, 'libs')) &&
        readdirSync(join(d, 'libs')).some((f) => f.startsWith('connect-runtime-')) &&
        readdirSync(join(d, 'plugins', 'debezium-connector-postgres')).some((f) => f.startsWith('debezium-connector-postgres-')),
      args: (out) => ['package', `-Dout=${out}`],
      otherwise: 'install Java 17 + Maven (the cdc lab\'s --capture debezium needs them)',
    },
    env,
    log,
  );
}

export interface DebeziumCaptureConfig {
  brokers: string[];
  /** The source database, as for our capture: postgres://user@host:port/db. */
  pgUrl: string;
  slot: string;
  publication: string;
  /** `schema.table`. */
  tables: string[];
  /** Topics are `<prefix>.<schema>.<table>`, as our capture names them. */
  topicPrefix: string;
  /**
   * Where the worker keeps the connector's source offsets (default: its own temp dir, gone with
   * it). A restarted worker given the same file resumes where the killed one had flushed.
   */
  offsetsFile?: string;
  /**
   * Heartbeat interval, ms (default none). With heartbeats the connector confirms the WAL position
   * to its slot even when no change of its tables arrives: its slot's confirmed_flush_lsn passes
   * the source's current LSN, the "caught up" the lab waits for. They go to
   * `__debezium-heartbeat.<topicPrefix>` (created by the broker).
   */
  heartbeatMs?: number;
  /**
   * Run at each heartbeat on the source (Debezium's `heartbeat.action.query`): a write to a table
   * in `tables` makes a change flow even while the source's WAL grows from other databases only —
   * Debezium confirms a position to its slot only after a change of its own tables.
   */
  heartbeatActionQuery?: string;
}

export interface DebeziumWorker {
  /** The Connect REST API (connector and task status). */
  restUrl: string;
  pid?: number;
  dir: string;
  stop(): Promise<void>;
  logTail(lines?: number): string;
}

/** Starts a Connect worker running the Debezium connector for `cfg`; resolves when its task is RUNNING. */
export async function startDebezium(cfg: DebeziumCaptureConfig, env: NodeJS.ProcessEnv = process.env, log: (m: string) => void = () => undefined): Promise<DebeziumWorker> {
  const java = javaInfo();
  if (java === null || java.major < 17) throw new EngineUnavailableError(`Debezium: ${java === null ? 'Java 17+ not found' : `Java ${java.major} found, 17+ needed`} — install a JDK 17+`);
  const home = ensureDebeziumJars(env, log);
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'de-lab-debezium-'));
  const restPort = await freePort();
  const pg = new URL(cfg.pgUrl);
  const worker = join(dir, 'worker.properties');
  writeFileSync(
    worker,
    props({
      'bootstrap.servers': cfg.brokers.join(','),
      'key.converter': 'org.apache.kafka.connect.json.JsonConverter',
      'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
      // The key without its schema: `{"id":17}`, the bytes our capture writes, so both land in the same partition.
      'key.converter.schemas.enable': 'false',
      // The value with its Connect schema: the apply reads column types from it.
      'value.converter.schemas.enable': 'true',
      'offset.storage.file.filename': cfg.offsetsFile ?? join(dir, 'offsets'),
      'offset.flush.interval.ms': '1000',
      'plugin.path': join(home, 'plugins'),
      'plugin.discovery': 'service_load',
      listeners: `http://127.0.0.1:${restPort}`,
      'producer.linger.ms': '5',
      'producer.batch.size': String(1 << 20),
      'producer.acks': 'all',
      // Topics exist before the connector starts (the lab creates them, as for our capture).
      'topic.creation.enable': 'false',
    }),
  );
  const connector = join(dir, 'connector.properties');
  writeFileSync(
    connector,
    props({
      name: CONNECTOR,
      'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
      'tasks.max': '1',
      'database.hostname': pg.hostname,
      'database.port': pg.port || '5432',
      'database.user': decodeURIComponent(pg.username || 'postgres'),
      'database.password': decodeURIComponent(pg.password),
      'database.dbname': pg.pathname.slice(1),
      'topic.prefix': cfg.topicPrefix,
      'plugin.name': 'pgoutput',
      'slot.name': cfg.slot,
      'publication.name': cfg.publication,
      'publication.autocreate.mode': 'filtered',
      'table.include.list': cfg.tables.join(','),
      'snapshot.mode': 'initial',
      'decimal.handling.mode': 'string',
      'tombstones.on.delete': 'true',
      'max.batch.size': '8192',
      'max.queue.size': '32768',
      'poll.interval.ms': '5',
      ...(cfg.heartbeatMs ? { 'heartbeat.interval.ms': String(cfg.heartbeatMs) } : {}),
      ...(cfg.heartbeatActionQuery ? { 'heartbeat.action.query': cfg.heartbeatActionQuery } : {}),
    }),
  );
  const log4j = join(dir, 'log4j.properties');
  writeFileSync(
    log4j,
    props({
      'log4j.rootLogger': 'WARN, stdout',
      'log4j.appender.stdout': 'org.apache.log4j.ConsoleAppender',
      'log4j.appender.stdout.layout': 'org.apache.log4j.PatternLayout',
      'log4j.appender.stdout.layout.ConversionPattern': '[%d] %p %m (%c)%n',
      'log4j.logger.io.debezium.connector.postgresql.PostgresConnectorTask': 'INFO',
    }),
  );
  const logFile = join(dir, 'connect.log');
  const proc = SupervisedProcess.start({
    cmd: 'java',
    args: [...JVM_BASE, '-Xms128m', '-Xmx1g', '-XX:+UseSerialGC', `-Dlog4j.configuration=file:${log4j}`, '-cp', `${join(home, 'libs')}/*`, 'org.apache.kafka.connect.cli.ConnectStandalone', worker, connector],
    cwd: dir,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 10000,
    cleanup: [dir],
    logFile,
  });
  const restUrl = `http://127.0.0.1:${restPort}`;
  await waitUntil(
    async () => {
      const res = await fetch(`${restUrl}/connectors/${CONNECTOR}/status`, { signal: AbortSignal.timeout(1000) });
      if (!res.ok) return false;
      const status = (await res.json()) as { connector: { state: string }; tasks: { state: string; trace?: string }[] };
      const failed = status.tasks.find((t) => t.state === 'FAILED');
      if (failed) throw new EngineUnavailableError(`Debezium: the connector task failed: ${(failed.trace ?? '').split('\n')[0]}`);
      return status.connector.state === 'RUNNING' && status.tasks.some((t) => t.state === 'RUNNING');
    },
    60000,
    () => new EngineUnavailableError(`Debezium: the Connect worker did not run the connector (${proc.deathReason ?? 'timeout'}): ${proc.logTail(3)}`),
    () => proc.deathReason,
  ).catch(async (err) => {
    await proc.stop();
    throw err;
  });
  log(`Debezium ${DEBEZIUM_VERSION} on Kafka Connect ${CONNECT_VERSION} (standalone, Java ${java.major}): connector running in ${Date.now() - t0} ms, REST ${restUrl}`);
  return {
    restUrl,
    pid: proc.serverPid ?? undefined,
    dir,
    stop: () => proc.stop(),
    logTail: (n) => proc.logTail(n),
  };
}

/** The topic the connector's heartbeats go to (when `heartbeatMs` is set). */
export const heartbeatTopic = (topicPrefix: string) => `__debezium-heartbeat.${topicPrefix}`;

const props = (o: Record<string, string>) =>
  `${Object.entries(o)
    .map(([k, v]) => `${k}=${v.replace(/\\/g, '\\\\')}`)
    .join('\n')}\n`;
