/**
 * What the JVM-based engines share (the Kafka broker, Kafka Connect with Debezium): the de-lab
 * cache, artifacts resolved from Maven Central once into it, the installed Java, the flags every
 * JVM we start gets.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { EngineUnavailableError } from '../errors.ts';

/**
 * Every JVM we start: no hsperfdata (the JVM's /tmp/hsperfdata_<user>/<pid> perf-counter files,
 * and a folder that outlives the run; only jstat/jps read them).
 */
export const JVM_BASE = ['-XX:-UsePerfData'];

/** ~/.cache/de-lab (DE_LAB_CACHE or XDG_CACHE_HOME move it): downloads kept between runs, never in the repo. */
export function deLabCache(env: NodeJS.ProcessEnv = process.env): string {
  return env.DE_LAB_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'de-lab');
}

/** The installed Java: its major version and exact VM build (one `java` start reads both). */
export function javaInfo(): { major: number; vmVersion: string | null } | null {
  const r = spawnSync('java', [...JVM_BASE, '-XshowSettings:properties', '-version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  const out = r.stderr + r.stdout;
  const m = /version "(\d+)(?:\.(\d+))?/.exec(out);
  if (!m) return null;
  const major = Number(m[1]);
  return { major: major === 1 ? Number(m[2]) : major, vmVersion: /java\.vm\.version = (\S+)/.exec(out)?.[1] ?? null };
}

export interface MavenResolve {
  /** For messages: "Kafka", "Debezium". */
  engine: string;
  /** What is fetched, for the log line. */
  what: string;
  pom: string;
  /** The folder the artifacts end in (inside the cache). */
  dest: string;
  /** Whether `dest` already holds a complete copy. */
  complete(dest: string): boolean;
  /** The Maven goal and properties that write the artifacts into `out`. */
  args(out: string): string[];
  /** When Maven is missing: what else the user can do. */
  otherwise: string;
}

/**
 * Artifacts resolved from Maven Central once and cached outside the repo. Maven writes into a temp
 * dir beside `dest`, renamed into place when complete: a killed download never leaves half a classpath.
 */
export function resolveFromMaven(spec: MavenResolve, env: NodeJS.ProcessEnv = process.env, log: (m: string) => void = () => undefined): string {
  if (existsSync(spec.dest) && spec.complete(spec.dest)) return spec.dest;
  const mvnEnv = { ...process.env, ...env, MAVEN_OPTS: `${env.MAVEN_OPTS ?? ''} ${JVM_BASE.join(' ')}`.trim() };
  const mvn = spawnSync('mvn', ['-v'], { encoding: 'utf8', env: mvnEnv });
  if (mvn.error || mvn.status !== 0) {
    throw new EngineUnavailableError(`${spec.engine}: Maven not found (needed once to fetch ${spec.what}) — ${spec.otherwise}`);
  }
  log(`${spec.engine}: resolving ${spec.what} from Maven Central (once) into ${spec.dest}`);
  mkdirSync(dirname(spec.dest), { recursive: true });
  const tmp = mkdtempSync(`${spec.dest}.tmp-`);
  const r = spawnSync('mvn', ['-q', '-B', '-f', spec.pom, ...spec.args(tmp)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: mvnEnv });
  if (r.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    const why = (r.stdout + r.stderr).split('\n').filter((l) => l.includes('ERROR')).slice(0, 2).join(' ');
    throw new EngineUnavailableError(`${spec.engine}: Maven could not resolve ${spec.what} (${why || `exit ${r.status}`})`);
  }
  try {
    renameSync(tmp, spec.dest);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another run won the race; its copy is complete
  }
  return spec.dest;
}
