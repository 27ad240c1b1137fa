import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { EngineUnavailableError } from '../../errors.ts';
import { dockerAnswers } from '../docker.ts';
import { freePort, waitUntil } from '../ports.ts';
import { SupervisedProcess } from '../supervised.ts';
import type { ProvisionMode, ProvisionedServer } from '../provision-mode.ts';
import { JVM_BASE, deLabCache, javaInfo, resolveFromMaven } from '../jvm.ts';

export const KAFKA_VERSION = '3.9.1';
const POM = fileURLToPath(new URL('../../../scripts/kafka/pom.xml', import.meta.url));

export interface KafkaServer extends ProvisionedServer {
  brokers: string[];
}

export async function provisionKafka(mode: ProvisionMode, env: NodeJS.ProcessEnv, log: (m: string) => void): Promise<KafkaServer> {
  const list = env.KAFKA_BROKERS;
  if (mode === 'external' || (mode === 'auto' && list)) {
    if (!list) throw new EngineUnavailableError('Kafka: --provision external needs KAFKA_BROKERS (e.g. localhost:9092)');
    const brokers = list.split(',').map((b) => b.trim()).filter(Boolean);
    if (!(await kafkaAnswers(brokers, 5000))) throw new EngineUnavailableError(`Kafka: KAFKA_BROKERS=${list} does not answer`);
    return { brokers, provider: 'external', stop: async () => undefined };
  }
  if (mode === 'containers' || (mode === 'auto' && (await dockerAnswers(env)))) return startContainer(log);
  return startLocal(mode, env, log);
}

export async function kafkaAnswers(brokers: string[], timeoutMs: number): Promise<boolean> {
  const admin = new Kafka({ clientId: 'de-lab-probe', brokers, logLevel: logLevel.NOTHING, connectionTimeout: Math.min(timeoutMs, 3000), retry: { retries: 0 } }).admin();
  try {
    await Promise.race([
      (async () => {
        await admin.connect();
        await admin.describeCluster();
      })(),
      new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), timeoutMs).unref()),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function startContainer(log: (m: string) => void): Promise<KafkaServer> {
  log(`Kafka: starting a container (testcontainers, apache/kafka:${KAFKA_VERSION})`);
  const tc = await import('testcontainers').catch((err: Error) => {
    throw new EngineUnavailableError(`Kafka: testcontainers failed to load (${err.message})`);
  });
  // The broker must advertise the address clients use: bind the same port on both sides.
  const port = await freePort();
  const container = await new tc.GenericContainer(`apache/kafka:${KAFKA_VERSION}`)
    .withEnvironment(brokerEnv(port))
    .withExposedPorts({ container: port, host: port })
    .withWaitStrategy(tc.Wait.forLogMessage(/Kafka Server started/))
    .start()
    .catch((err: Error) => {
      throw new EngineUnavailableError(`Kafka: container did not start (${err.message.split('\n')[0]})`);
    });
  return { brokers: [`127.0.0.1:${port}`], provider: 'containers', stop: async () => void (await container.stop()) };
}

function brokerEnv(port: number): Record<string, string> {
  return {
    KAFKA_NODE_ID: '1',
    KAFKA_PROCESS_ROLES: 'broker,controller',
    KAFKA_LISTENERS: `PLAINTEXT://0.0.0.0:${port},CONTROLLER://0.0.0.0:9093`,
    KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${port}`,
    KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
    KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
    KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
    KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS: '1',
    KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
    KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
    KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
    // Lets the cdc lab's crash tests use short consumer sessions: a SIGKILLed consumer holds its
    // partitions until its session expires (broker default minimum: 6 s).
    KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS: '1000',
  };
}

/**
 * Class data sharing for the broker's JVM: the classes a broker loads, archived once (at the exit
 * of the first broker started without an archive) and mapped by every later start — the local
 * broker is ready in ~1.8 s instead of ~3.1 s on a 2-core machine. One archive per JDK build
 * (an archive from another build is refused by the JVM, which then just loads classes normally).
 */
function classArchive(libs: string, vmVersion: string | null): string | null {
  // A dump whose broker was killed (its run SIGKILLed) is never promoted: sweep old ones.
  for (const f of readdirSync(dirname(libs))) {
    if (!/\.jsa\.tmp-/.test(f)) continue;
    const full = join(dirname(libs), f);
    try {
      if (Date.now() - statSync(full).mtimeMs > 600_000) rmSync(full, { force: true });
    } catch {
      /* swept by another run meanwhile */
    }
  }
  return vmVersion ? join(dirname(libs), `cds-${vmVersion.replace(/[^A-Za-z0-9._+-]/g, '_')}.jsa`) : null;
}

/** Keeps an archive the broker dumped at exit only if the JVM can map it (a kill mid-dump leaves a broken one). */
function promoteArchive(dumped: string, archive: string, classpath: string): void {
  try {
    if (!existsSync(dumped) || statSync(dumped).size === 0) return;
    // The archive is valid for the classpath it was dumped with: check it with that one.
    const check = spawnSync('java', [...JVM_BASE, '-Xshare:on', `-XX:SharedArchiveFile=${dumped}`, '-cp', classpath, '-version'], { encoding: 'utf8' });
    if (check.status === 0) renameSync(dumped, archive);
  } catch {
    /* no archive this time; the next broker tries again */
  } finally {
    rmSync(dumped, { force: true });
  }
}

/** The broker's jars, resolved from Maven Central once and cached outside the repo. */
export function ensureKafkaJars(env: NodeJS.ProcessEnv = process.env, log: (m: string) => void = () => undefined): string {
  return resolveFromMaven(
    {
      engine: 'Kafka',
      what: `the Apache Kafka ${KAFKA_VERSION} broker jars`,
      pom: POM,
      dest: join(deLabCache(env), `kafka-${KAFKA_VERSION}`, 'libs'),
      complete: (libs) => readdirSync(libs).some((f) => f.startsWith('kafka_2.13-')),
      args: (out) => ['dependency:copy-dependencies', `-DoutputDirectory=${out}`, '-DincludeScope=runtime'],
      otherwise: 'install Java 17 + Maven, or Docker, or set KAFKA_BROKERS',
    },
    env,
    log,
  );
}

async function startLocal(mode: ProvisionMode, env: NodeJS.ProcessEnv, log: (m: string) => void): Promise<KafkaServer> {
  const java = javaInfo();
  if (java === null || java.major < 17) {
    const what = java === null ? 'Java 17+ not found' : `Java ${java.major} found, 17+ needed`;
    const prefix = mode === 'local' ? 'Kafka:' : 'Kafka: KAFKA_BROKERS unset, no Docker daemon,';
    throw new EngineUnavailableError(`${prefix} ${what} — install Java 17 + Maven, or Docker, or set KAFKA_BROKERS`);
  }
  const libs = ensureKafkaJars(env, log);
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'de-lab-kafka-'));
  const [port, controllerPort] = [await freePort(), await freePort()];
  const props = join(dir, 'server.properties');
  writeFileSync(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'controller.listener.names=CONTROLLER',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      `log.dirs=${join(dir, 'data')}`,
      'num.partitions=1',
      // Single node: every internal topic with one replica, one partition (fast group coordinator start).
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'transaction.state.log.num.partitions=1',
      'group.initial.rebalance.delay.ms=0',
      'group.min.session.timeout.ms=1000', // cdc crash tests: a killed consumer's partitions free up sooner
      'auto.create.topics.enable=true',
      'delete.topic.enable=true',
      '',
    ].join('\n'),
  );
  const log4j = join(dir, 'log4j.properties');
  writeFileSync(
    log4j,
    [
      'log4j.rootLogger=WARN, stdout',
      'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
      'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
      'log4j.logger.kafka.server.KafkaServer=INFO',
      'log4j.logger.kafka.server.KafkaRaftServer=INFO',
      '',
    ].join('\n'),
  );
  const cp = `${libs}/*`;
  const archive = classArchive(libs, java.vmVersion);
  const haveArchive = archive !== null && existsSync(archive);
  const dumpTo = archive && !haveArchive ? `${archive}.tmp-${process.pid}-${randomBytes(3).toString('hex')}` : null;
  const share = haveArchive ? [`-XX:SharedArchiveFile=${archive}`] : [];
  const jvm = [...JVM_BASE, '-Xms128m', '-Xmx768m', '-XX:+UseSerialGC', ...share, `-Dlog4j.configuration=file:${log4j}`, '-cp', cp];
  // A base64url id may start with '-', which the storage tool's argument parser takes for a flag.
  let clusterId = randomBytes(16).toString('base64url');
  while (clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url');
  const fmt = spawnSync('java', [...jvm, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', props], { encoding: 'utf8' });
  if (fmt.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new EngineUnavailableError(`Kafka: formatting KRaft storage failed (${(fmt.stderr || fmt.stdout).trim().split('\n').slice(-1)[0]})`);
  }
  const logFile = join(dir, 'kafka.log');
  const proc = SupervisedProcess.start({
    cmd: 'java',
    args: [...(dumpTo ? [`-XX:ArchiveClassesAtExit=${dumpTo}`] : []), ...jvm, 'kafka.Kafka', props],
    cwd: dir,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 8000,
    cleanup: [dir],
    logFile,
  });
  const brokers = [`127.0.0.1:${port}`];
  await waitUntil(
    () => kafkaAnswers(brokers, 2000),
    60000,
    () => new EngineUnavailableError(`Kafka: local broker did not become ready on 127.0.0.1:${port} (${proc.deathReason ?? 'timeout'}): ${proc.logTail(3)}`),
    () => proc.deathReason,
  ).catch(async (err) => {
    await proc.stop();
    if (dumpTo) rmSync(dumpTo, { force: true });
    throw err;
  });
  log(`Kafka: local KRaft broker ${KAFKA_VERSION} (Maven Central jars, Java ${java.major}) on ${brokers[0]} in ${Date.now() - t0} ms`);
  const stop = async () => {
    await proc.stop();
    if (dumpTo && archive) promoteArchive(dumpTo, archive, cp);
  };
  return { brokers, provider: 'local', stop, pid: proc.serverPid ?? undefined, dir };
}
