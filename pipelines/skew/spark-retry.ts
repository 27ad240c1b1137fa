/**
 * The retry trap on a real cluster: run the salted join, and while its reducers run, SIGKILL one
 * executor — the JVM holding half of the map output. Spark loses that output, the reducers fail to
 * fetch it, and the scheduler re-runs map tasks. With a `rand()` salt over input that itself came
 * from a shuffle, a re-run map task reads its rows in another order and draws other salts: the
 * JS simulation (retry.ts) shows the rows that then land on other reducers. What Spark 4 does
 * about it is measured here, not assumed: the answer (count + fingerprint against DuckDB's) and
 * how many stage attempts and tasks the recovery took.
 *
 * Local cluster only: the executor is found among this machine's processes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { SparkSession } from '../engines/spark/driver.ts';
import type { SparkRest, StageSummary } from '../engines/spark/rest.ts';
import { fingerprintSql, setConf, strategySql, type SparkSkewOptions } from './spark.ts';

export interface SparkRetryRun {
  salt: 'identity' | 'rand';
  /** Executor killed, and when: after how many of the join stage's tasks had finished. */
  killed: string | null;
  rows: number | null;
  fp: number | null;
  /** Same rows and fingerprint as DuckDB's inner join. */
  equal: boolean;
  /** Stage attempts beyond the first (a stage re-submitted after a fetch failure), and their tasks. */
  stageRetries: number;
  tasksInRetries: number;
  /** Task attempts that failed fetching lost map output, and that died with the executor. */
  fetchFailures: number;
  executorLost: number;
  /** Task attempts launched by the statement, all stages. */
  tasksLaunched: number;
  ms: number;
  /** Spark's error, when the job failed instead of recovering. */
  error?: string;
}

/** pid of executor `executorId` of application `appId`, from /proc (the worker's child JVM). */
export function executorPid(appId: string, executorId: string): number | null {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!args.some((a) => a.endsWith('CoarseGrainedExecutorBackend'))) continue;
    const arg = (name: string) => args[args.indexOf(name) + 1];
    if (arg('--app-id') === appId && arg('--executor-id') === executorId) return Number(d);
  }
  return null;
}

export async function retryOnSpark(db: SparkSession, rest: SparkRest, opts: SparkSkewOptions, salt: 'identity' | 'rand', native: { rows: number; fp: number }): Promise<SparkRetryRun> {
  const { conf, join } = strategySql('salted', 'inner', opts, { salt, shuffledInput: true });
  await setConf(db, conf);
  const before = new Set((await rest.stages()).map((s) => s.stageId));
  const t0 = performance.now();
  let settled = false;
  const query = db
    .query<{ n: number; fp: number }>(fingerprintSql(join))
    .then((r) => ({ rows: Number(r[0]!.n), fp: Number(r[0]!.fp), error: undefined }))
    .catch((err: Error) => ({ rows: null, fp: null, error: err.message }))
    .finally(() => (settled = true));
  // Kill once the map stages are done and the join's reducers have started fetching.
  let killed: string | null = null;
  while (!settled && killed === null) {
    const mine = (await rest.stages()).filter((s) => !before.has(s.stageId));
    const done = mine.filter((s) => s.status === 'COMPLETE').length;
    const reducing = mine.find((s) => s.status === 'ACTIVE' && s.numTasks === opts.partitions && done >= 3 && (s as StageSummary & { numCompleteTasks: number }).numCompleteTasks >= 2);
    if (reducing) {
      // The victim: the executor holding the most map output of the statement's finished stages
      // (killing one that holds none loses nothing but its running task).
      const held = new Map<string, number>();
      for (const st of mine.filter((x) => x.status === 'COMPLETE')) {
        for (const t of await rest.tasks(st.stageId, st.attemptId)) if (t.status === 'SUCCESS') held.set(t.executorId, (held.get(t.executorId) ?? 0) + t.shuffleWriteRecords);
      }
      const execs = (await rest.executors()).filter((e) => e.isActive && e.id !== 'driver');
      const victim = execs.sort((a, b) => (held.get(b.id) ?? 0) - (held.get(a.id) ?? 0))[0];
      const pid = victim ? executorPid(rest.appId, victim.id) : null;
      if (pid) {
        process.kill(pid, 'SIGKILL');
        killed = `executor ${victim!.id} (pid ${pid}) during stage ${reducing.stageId}, ${(reducing as StageSummary & { numCompleteTasks: number }).numCompleteTasks}/${reducing.numTasks} tasks done`;
      }
    }
    await new Promise((r) => setTimeout(r, 40));
  }
  const result = await query;
  const ms = performance.now() - t0;
  // The REST API lags the scheduler: let it see the end.
  await new Promise((r) => setTimeout(r, 500));
  const stages = (await rest.stages()).filter((s) => !before.has(s.stageId));
  let tasksLaunched = 0;
  let fetchFailures = 0;
  let executorLost = 0;
  for (const st of stages) {
    const tasks = await rest.tasks(st.stageId, st.attemptId).catch(() => []);
    tasksLaunched += tasks.length;
    fetchFailures += tasks.filter((t) => t.error?.startsWith('FetchFailed')).length;
    executorLost += tasks.filter((t) => t.error?.startsWith('ExecutorLostFailure')).length;
  }
  const retried = stages.filter((st) => st.attemptId > 0);
  return {
    salt,
    killed,
    rows: result.rows,
    fp: result.fp,
    equal: result.rows === native.rows && result.fp === native.fp,
    stageRetries: retried.length,
    tasksInRetries: retried.reduce((n, st) => n + st.numTasks, 0),
    fetchFailures,
    executorLost,
    tasksLaunched,
    ms,
    ...(result.error ? { error: result.error } : {}),
  };
}
