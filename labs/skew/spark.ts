/**
 * `--engine spark`: the five strategies run on real Spark instead of the JS executor. Only the
 * executor changes: the fixture, the hot keys, DuckDB's answer and the claims are the lab's own.
 * A run's tasks are the ones Spark ran (REST API), its makespan the E-executor schedule of their
 * real run times — and the real stage time on this small cluster, reported beside it.
 *
 * Check mode (pitfalls, exercises) stays on the JS executor: what is judged there is a JS map
 * function, which Spark cannot run. Imported on first use: DuckDB runs never load the client.
 */
import type { LabContext } from '../contract.ts';
import { sparkServer, sparkSession } from '../../pipelines/engines/spark/index.ts';
import { SparkRest } from '../../pipelines/engines/spark/rest.ts';
import { retryOnSpark } from '../../pipelines/skew/spark-retry.ts';
import { loadSkewTablesSpark, runSparkStrategy, type SparkJoinRun, type SparkSkewOptions } from '../../pipelines/skew/spark.ts';
import { makespan, maxOverMean, type AnswerDiff, type JoinType, type StrategyName } from '../../pipelines/skew/index.ts';
import type { SkewState, StrategyRun } from './scenario.ts';

export const SPARK_BASIS = 'Spark task run times (REST API), scheduled on E executors';

const STRATEGIES: readonly StrategyName[] = ['plain', 'isolated', 'broadcast', 'skew-split', 'salted'];

export async function strategiesOnSpark(ctx: LabContext, state: SkewState, params: { partitions: number; mapTasks: number; saltFactor: number; executors: number }): Promise<void> {
  const server = await sparkServer(ctx.engines);
  if (!server.uiUrl) throw new Error('Spark: per-task metrics need the driver UI — set SPARK_UI_URL (e.g. http://host:4040) with SPARK_REMOTE');
  const db = await sparkSession(ctx.engines);
  const rest = await SparkRest.open(server.uiUrl);
  const opts: SparkSkewOptions = { partitions: params.partitions, mapTasks: params.mapTasks, hotKeys: state.detection!.hotKeys, saltFactor: params.saltFactor, database: ctx.engines.name('skew') };
  ctx.engines.onStop(async () => void (await db.exec(`DROP DATABASE IF EXISTS ${opts.database} CASCADE`).catch(() => undefined)));
  const load = await loadSkewTablesSpark(db, state.fixture!, opts);
  state.spark = { label: server.label, version: server.version, uiUrl: server.uiUrl, startupMs: server.startupMs, loadMs: load.ms, stages: [], retry: [] };
  for (const joinType of ['inner', 'left'] as const) {
    const native = state.native.find((n) => n.joinType === joinType)!;
    for (const s of STRATEGIES) {
      // Inner joins are timed: each task's fastest of 2 runs. Left joins are there for the answer: one run.
      const r = await runSparkStrategy(db, rest, s, joinType, opts, joinType === 'inner' ? 2 : 1);
      if (s === 'plain') state.plainVsNative.push({ joinType, plainRows: r.rows, plainFp: r.fp, nativeRows: native.rows, nativeFp: native.fp });
      state.runs.push(toRun(r, native, params.executors));
      state.spark.stages.push({ strategy: s, joinType, stageMs: r.stageMs, stages: r.stages });
    }
  }
  state.makespanBasis = SPARK_BASIS;
  // The retry trap, for real: an executor SIGKILLed while the salted join's reducers run (local cluster: its pid is ours to find).
  if (server.provider === 'local') {
    const native = state.native.find((n) => n.joinType === 'inner')!;
    for (const salt of ['rand', 'identity'] as const) state.spark.retry.push(await retryOnSpark(db, rest, opts, salt, native));
  }
}

function toRun(r: SparkJoinRun, native: { rows: number; fp: number; joinType: JoinType }, executors: number): StrategyRun {
  const equal = r.rows === native.rows && r.fp === native.fp;
  const answer: AnswerDiff = equal
    ? { equal: true, differingRows: 0, missing: 0, extra: 0 }
    : {
        equal: false,
        differingRows: Math.abs(r.rows - native.rows),
        missing: Math.max(0, native.rows - r.rows),
        extra: Math.max(0, r.rows - native.rows),
        example: `Spark returned ${r.rows} rows (fingerprint ${r.fp}), DuckDB ${native.rows} (${native.fp})`,
      };
  return {
    strategy: r.strategy,
    joinType: r.joinType,
    tasks: r.tasks,
    ratio: maxOverMean(r.tasks.map((t) => t.inputRows)),
    rowsShuffled: r.rowsShuffled,
    rowsBroadcast: 0,
    makespanMs: makespan(r.tasks.map((t) => t.ms), executors),
    makespanRows: makespan(r.tasks.map((t) => t.inputRows), executors),
    wallMs: r.wallMs,
    outputRows: r.rows,
    answer,
    stageMs: r.stageMs,
  };
}
