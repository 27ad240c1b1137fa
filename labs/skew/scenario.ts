/**
 * The skew lab's pipeline: the knobs, the run's evidence, and the steps that fill it without
 * printing — the fixture, hot-key detection, DuckDB's own join (the answer and the floor), the
 * K sweep and the retry trap. The five strategies run on an executor chosen once per run
 * (strategies.ts: the JS one; spark.ts: a cluster).
 */
import type { LabContext } from '../contract.ts';
import type { DuckDbEngine } from '../../pipelines/engines/index.ts';
import { Prng } from '../../fixtures/prng.ts';
import type { SkewFixture } from '../../fixtures/skew.ts';
import { detectHotKeys, loadSkewTables, nativeJoin, retryMapTask, splits, type Detection, type JoinStrategy, type JoinType, type NativeJoin, type RetryResult, type SkewImpl, type StrategyName, type StrategyOptions, type TaskStats, type AnswerDiff } from '../../pipelines/skew/index.ts';
import type { SparkRetryRun } from '../../pipelines/skew/spark-retry.ts';
import { saltWithRand } from './pitfalls.ts';

/** The lab's knobs (README: "Parameters"). */
export const SKEW_PARAMS = {
  /** P: reducers of the shuffle. */
  partitions: 16,
  /** E: executors the makespan is simulated for (E = P: every task gets its own core). */
  executors: 16,
  /** K for the salted join. */
  saltFactor: 16,
  /** Detection: 1% Bernoulli sample, at least 20,000 rows (all of a smaller table). */
  sampleRate: 0.01,
  minSampleRows: 20_000,
  /** A key is hot at ≥ 0.5% of all rows (8% of one partition's fair share at P = 16). */
  hotShare: 0.005,
  /** Input splits (map tasks) per table. */
  mapTasks: 16,
  kSweep: [1, 2, 4, 8, 16, 24, 32, 64],
  /** Thresholds of the claims. */
  minRatioBefore: 6,
  maxRatioAfter: 1.5,
  minSpeedup: 3,
  /** The K sweep's knee: the smallest K after which no larger K cuts the makespan by 5% more. */
  kneeGain: 0.05,
} as const;

export interface StrategyRun {
  strategy: StrategyName;
  joinType: JoinType;
  tasks: TaskStats[];
  ratio: number;
  rowsShuffled: number;
  rowsBroadcast: number;
  /** Simulated from measured task times, E executors. */
  makespanMs: number;
  /** The same schedule with each task's input rows as its duration (deterministic). */
  makespanRows: number;
  wallMs: number;
  outputRows: number;
  answer: AnswerDiff;
  /** --engine spark: real time of the join's stage(s) on the cluster, ms. */
  stageMs?: number;
}

export interface SweepPoint {
  k: number;
  rowsShuffled: number;
  /** Small-side rows shipped (copies included). */
  dimCopies: number;
  ratio: number;
  makespanRows: number;
  /** Only in a measured run. */
  makespanMs: number | null;
  partitionRows: number[];
}

/** Runs the five strategies (or the candidate's salted one beside plain) and fills `runs` and `plainVsNative`. */
export type StrategyExecutor = (ctx: LabContext, impl: SkewImpl, state: SkewState) => Promise<void>;

/** How this run goes, chosen once when it starts (lab.ts): a reference run measures, a check run judges rows. */
export interface SkewPlan {
  /** Timings are measured (task times, the K sweep's makespans); a check run needs rows only. */
  measured: boolean;
  /** The fixed strategies run beside the salted one (a check run judges a candidate salted map side: plain suffices). */
  fixed: readonly JoinStrategy[];
  executor: StrategyExecutor;
}

export interface SkewState {
  plan: SkewPlan;
  fixture?: SkewFixture;
  detection?: Detection;
  /** Rows of merchants whose key is hot: what salting copies K times. */
  hotDimRows: number;
  native: NativeJoin[];
  plainVsNative: { joinType: JoinType; plainRows: number; plainFp: number; nativeRows: number; nativeFp: number }[];
  runs: StrategyRun[];
  sweep: SweepPoint[];
  retry?: RetryResult;
  retryRand?: RetryResult;
  /** Balance of the reference (hot keys only) at K = saltFactor, computed when a candidate over-replicates. */
  hotOnlyRatio?: number;
  /** Strategy runs the same-answer claim expects: (fixed + salted) × inner and left. */
  expectedRuns: number;
  loadMs?: number;
  /** What the makespan is computed from: the JS executor's task times, or Spark's (--engine spark). */
  makespanBasis: string;
  /** --engine spark: the cluster, and each strategy's real stage time on it. */
  spark?: {
    label: string;
    version: string;
    uiUrl: string;
    startupMs: number;
    loadMs: number;
    stages: { strategy: StrategyName; joinType: JoinType; stageMs: number; stages: number }[];
    /** The retry trap on the cluster: an executor killed during the salted join, rand() vs identity salt. */
    retry: SparkRetryRun[];
  };
}

export const JS_BASIS = 'simulated from measured task times';

export function newSkewState(plan: SkewPlan): SkewState {
  return { plan, hotDimRows: 0, native: [], plainVsNative: [], runs: [], sweep: [], expectedRuns: 2 * (plan.fixed.length + 1), makespanBasis: JS_BASIS };
}

export function strategyOptions(seed: number, detection: Detection, joinType: JoinType, saltFactor: number = SKEW_PARAMS.saltFactor): StrategyOptions {
  return { joinType, partitions: SKEW_PARAMS.partitions, mapTasks: SKEW_PARAMS.mapTasks, hotKeys: detection.hotKeys, saltFactor, seed };
}

/** Hot keys from a seeded sample, and the merchant rows salting will copy. */
export function detect(fx: SkewFixture, seed: number): { detection: Detection; hotDimRows: number } {
  const detection = detectHotKeys(fx.fact, { sampleRate: SKEW_PARAMS.sampleRate, minSampleRows: SKEW_PARAMS.minSampleRows, hotShare: SKEW_PARAMS.hotShare }, new Prng(seed).fork('skew-sample'));
  let hotDimRows = 0;
  for (const k of fx.dim.key) if (detection.hotKeys.has(k)) hotDimRows++;
  return { detection, hotDimRows };
}

/** DuckDB's own joins: the answer every strategy must match, and (inner, the faster of two runs) the floor. */
export async function nativeJoins(db: DuckDbEngine, fx: SkewFixture): Promise<{ loadMs: number; native: NativeJoin[] }> {
  const loadMs = (await loadSkewTables(db, fx)).ms;
  const [a, b] = [await nativeJoin(db, 'inner'), await nativeJoin(db, 'inner')];
  return { loadMs, native: [a.ms <= b.ms ? a : b, await nativeJoin(db, 'left')] };
}

/** The retry trap: the map task with the most hot rows re-run, with the candidate's salt and with rand(). */
export function retryTrap(fx: SkewFixture, impl: SkewImpl, seed: number, detection: Detection): { retry: RetryResult; retryRand: RetryResult } {
  const hot = detection.hotKeys;
  const bounds = splits(fx.fact.id.length, SKEW_PARAMS.mapTasks);
  let best = 0;
  let bestHot = -1;
  bounds.forEach(([a, b], m) => {
    let h = 0;
    for (let i = a; i < b; i++) if (hot.has(fx.fact.key[i]!)) h++;
    if (h > bestHot) [best, bestHot] = [m, h];
  });
  const opts = strategyOptions(seed, detection, 'inner');
  return { retry: retryMapTask(fx, impl.saltHotKeys, opts, best), retryRand: retryMapTask(fx, saltWithRand, opts, best) };
}
