/**
 * The five strategies on real Spark: the same tables, the same hot keys, each strategy written
 * as Spark SQL under the settings it needs (AQE off and broadcast off for the plain join, AQE's
 * skew join on for skew-split, …), run through Spark Connect. Balance and makespan come from
 * the tasks Spark actually ran — read back from the driver's REST API (records read and run
 * time per task) — and the answer from an order-independent fingerprint computed in Spark,
 * the one DuckDB computes (native.ts).
 *
 * Salting on Spark: a hot row's salt index is derived from its identity, `pmod(hash(payment_id), K)`
 * (never rand()). Spark's shuffle puts a (key, salt) pair on reducer pmod(murmur3(key, salt), P),
 * so K salts numbered 0..K−1 would collide like balls in bins; each hot key's K salt *values*
 * are instead chosen (in JS, with Spark's own hash, below) to land on K distinct reducers — the
 * same placement the JS executor's partitionOf gives.
 */
import type { SparkSession } from '../engines/spark/driver.ts';
import type { SparkRest, StageSummary, TaskMetricsRow } from '../engines/spark/rest.ts';
import { int32Ipc } from '../engines/spark/driver.ts';
import { LabError } from '../errors.ts';
import { FP_MOD } from './answer.ts';
import { NULL_KEY } from './hash.ts';
import { splits } from './strategies.ts';
import { SEGMENTS, type JoinType, type SkewTables, type StrategyName, type TaskStats } from './types.ts';

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));

/** Spark's Murmur3_x86_32.hashInt(input, seed): what `hash(int)` and the shuffle's partitioner compute per INT column. */
export function sparkHashInt(input: number, seed: number): number {
  let k1 = Math.imul(input | 0, 0xcc9e2d51);
  k1 = rotl(k1, 15);
  k1 = Math.imul(k1, 0x1b873593);
  let h1 = (seed | 0) ^ k1;
  h1 = rotl(h1, 13);
  h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
  h1 ^= 4;
  h1 ^= h1 >>> 16;
  h1 = Math.imul(h1, 0x85ebca6b);
  h1 ^= h1 >>> 13;
  h1 = Math.imul(h1, 0xc2b2ae35);
  h1 ^= h1 >>> 16;
  return h1 | 0;
}

/** Spark SQL `hash(a, b, …)` of INT values (seed 42; a NULL leaves the hash as it is). */
export function sparkHash(...values: (number | null)[]): number {
  let h = 42;
  for (const v of values) if (v !== null) h = sparkHashInt(v, h);
  return h;
}

/** The reducer Spark's hash partitioning sends INT keys to: pmod(hash(keys), P). */
export const sparkPartition = (values: (number | null)[], partitions: number) => ((sparkHash(...values) % partitions) + partitions) % partitions;

/** K salt values for `key` whose (key, value) pairs land on K distinct reducers (K ≤ P; beyond P, the rest wrap). */
export function spreadSalts(key: number, k: number, partitions: number): number[] {
  const values: number[] = [];
  const used = new Set<number>();
  for (let v = 0; values.length < k; v++) {
    const p = sparkPartition([key, v], partitions);
    if (used.has(p) && used.size < partitions) continue;
    used.add(p);
    values.push(v);
  }
  return values;
}

export interface SparkSkewOptions {
  partitions: number;
  mapTasks: number;
  hotKeys: ReadonlySet<number>;
  saltFactor: number;
  /** Database the tables go in (one per run). */
  database: string;
}

/**
 * Loads payments and merchants into Parquet tables: payments as `mapTasks` files, file m holding
 * the rows of split m (the JS executor's map tasks), each uploaded as its own Arrow LocalRelation
 * (a few MiB per message: one 2M-row relation would be converted in the driver's heap at once).
 */
export async function loadSkewTablesSpark(db: SparkSession, tables: SkewTables, opts: SparkSkewOptions): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  const { id, key, amountCents } = tables.fact;
  const d = opts.database;
  const segments = `array(${SEGMENTS.map((s) => `'${s}'`).join(', ')})`;
  await db.exec(`
    CREATE DATABASE IF NOT EXISTS ${d};
    DROP TABLE IF EXISTS ${d}.payments;
    DROP TABLE IF EXISTS ${d}.merchants;
    CREATE TABLE ${d}.payments (payment_id INT, merchant_id INT, amount_cents INT) USING parquet;
    CREATE TABLE ${d}.merchants (merchant_id INT, segment STRING) USING parquet`);
  let bytes = 0;
  // One INSERT per split: one task, one file (COALESCE(1): one partition, no shuffle). One at a
  // time: two INSERTs into one table at once collide in its _temporary dir; one statement over
  // all splits stalls the cluster at 2M rows, and a union of several splits' relations is written
  // as fewer files than splits.
  for (const [m, [start, end]] of splits(id.length, opts.mapTasks).entries()) {
    const k = key.subarray(start, end);
    const ipc = int32Ipc({ payment_id: { values: id.subarray(start, end) }, merchant_id: { values: k, isNull: (i) => k[i] === NULL_KEY }, amount_cents: { values: amountCents.subarray(start, end) } });
    bytes += ipc.byteLength;
    await db.createView(`skew_upload_${m}`, ipc);
    await db.exec(`INSERT INTO ${d}.payments SELECT /*+ COALESCE(1) */ payment_id, merchant_id, amount_cents FROM skew_upload_${m}; DROP VIEW skew_upload_${m}`);
  }
  const dims = int32Ipc({ merchant_id: { values: tables.dim.key }, segment_no: { values: Int32Array.from(tables.dim.segment) } });
  bytes += dims.byteLength;
  await db.createView('skew_upload', dims);
  await db.exec(`INSERT INTO ${d}.merchants SELECT /*+ COALESCE(1) */ merchant_id, element_at(${segments}, segment_no + 1) AS segment FROM skew_upload; DROP VIEW skew_upload`);
  // The map side of every strategy is one task per file: check there are mapTasks of them.
  const [files] = await db.query<{ n: number }>(`SELECT count(*) AS n FROM (SELECT DISTINCT _metadata.file_path FROM ${d}.payments)`);
  if (files!.n !== opts.mapTasks) throw new LabError(`Spark: payments written as ${files!.n} files, ${opts.mapTasks} expected (one per map task)`);
  return { ms: performance.now() - t0, bytes };
}

/** Session settings every strategy starts from: P reducers, no broadcast, no AQE, one map task per payments file. */
function baseConf(opts: SparkSkewOptions): Record<string, string> {
  return {
    'spark.sql.shuffle.partitions': String(opts.partitions),
    'spark.sql.autoBroadcastJoinThreshold': '-1',
    'spark.sql.adaptive.enabled': 'false',
    'spark.sql.adaptive.skewJoin.enabled': 'false',
    // A file is one split (none is larger), and no two files share a task: mapTasks map tasks.
    'spark.sql.files.maxPartitionBytes': '64m',
    'spark.sql.files.openCostInBytes': '64m',
  };
}

/** What a strategy changes in the session, and its join as SQL (columns: payment_id, amount_cents, matched, segment). */
export function strategySql(strategy: StrategyName, joinType: JoinType, opts: SparkSkewOptions, variant: { salt?: 'identity' | 'rand'; shuffledInput?: boolean } = {}): { conf: Record<string, string>; join: string } {
  const d = opts.database;
  const J = joinType === 'left' ? 'LEFT JOIN' : 'JOIN';
  const hot = [...opts.hotKeys].sort((a, b) => a - b);
  const inHot = hot.length ? `IN (${hot.join(', ')})` : 'IN (NULL)';
  const conf = baseConf(opts);
  const cols = (m: string) => `p.payment_id, p.amount_cents, ${m}.merchant_id AS matched, ${m}.segment`;
  switch (strategy) {
    case 'plain':
      return { conf, join: `SELECT ${cols('m')} FROM ${d}.payments p ${J} ${d}.merchants m ON m.merchant_id = p.merchant_id` };
    case 'broadcast':
      return { conf, join: `SELECT /*+ BROADCAST(m) */ ${cols('m')} FROM ${d}.payments p ${J} ${d}.merchants m ON m.merchant_id = p.merchant_id` };
    case 'skew-split':
      return {
        conf: {
          ...conf,
          'spark.sql.adaptive.enabled': 'true',
          'spark.sql.adaptive.skewJoin.enabled': 'true',
          // Keep P reducers (no coalescing): only the skewed one is cut.
          'spark.sql.adaptive.coalescePartitions.enabled': 'false',
          // Skewed = 5× the median partition (Spark's default factor); the 256 MB floor is for real data sizes.
          'spark.sql.adaptive.skewJoin.skewedPartitionFactor': '5',
          'spark.sql.adaptive.skewJoin.skewedPartitionThresholdInBytes': '1k',
          'spark.sql.adaptive.advisoryPartitionSizeInBytes': '1k',
        },
        join: `SELECT ${cols('m')} FROM ${d}.payments p ${J} ${d}.merchants m ON m.merchant_id = p.merchant_id`,
      };
    case 'isolated': {
      // Hot keys (and, in a left join, NULL keys: they match nothing) joined map-side against the
      // hot merchants, broadcast; every other row through the usual shuffle.
      const mapSide = joinType === 'left' ? `(p.merchant_id ${inHot} OR p.merchant_id IS NULL)` : `p.merchant_id ${inHot}`;
      return {
        conf,
        join: `SELECT /*+ BROADCAST(m) */ ${cols('m')} FROM ${d}.payments p ${J} (SELECT * FROM ${d}.merchants WHERE merchant_id ${inHot}) m ON m.merchant_id = p.merchant_id WHERE ${mapSide}
          UNION ALL
          SELECT ${cols('m')} FROM ${d}.payments p ${J} ${d}.merchants m ON m.merchant_id = p.merchant_id WHERE p.merchant_id NOT ${inHot}`,
      };
    }
    case 'salted': {
      const K = opts.saltFactor;
      const P = opts.partitions;
      const saltMap = hot.length ? `map(${hot.map((k) => `${k}, array(${spreadSalts(k, K, P).join(', ')})`).join(', ')})` : 'map(0, array(0))';
      // NULL keys (left join: they must come out, and match nothing) are spread by row id too.
      // The retry trap (spark-retry.ts) swaps in the textbook rand() salt, over input that itself
      // comes from a shuffle (a re-run map task then reads its rows in another order).
      const saltIndex = variant.salt === 'rand' ? `CAST(floor(rand() * ${K}) AS INT)` : `pmod(hash(payment_id), ${K})`;
      const source = variant.shuffledInput ? `(SELECT /*+ REPARTITION(${P}, payment_id) */ * FROM ${d}.payments)` : `${d}.payments`;
      const fact = `SELECT payment_id, merchant_id, amount_cents,
          CASE WHEN merchant_id IS NULL THEN pmod(hash(payment_id), ${P})
               WHEN merchant_id ${inHot} THEN element_at(element_at(${saltMap}, merchant_id), ${saltIndex} + 1)
               ELSE 0 END AS salt
        FROM ${source}`;
      const dim = `SELECT merchant_id, segment, 0 AS salt FROM ${d}.merchants WHERE NOT (merchant_id ${inHot})
        UNION ALL
        SELECT merchant_id, segment, salt FROM ${d}.merchants LATERAL VIEW explode(element_at(${saltMap}, merchant_id)) s AS salt WHERE merchant_id ${inHot}`;
      return { conf, join: `SELECT ${cols('m')} FROM (${fact}) p ${J} (${dim}) m ON m.merchant_id = p.merchant_id AND m.salt = p.salt` };
    }
  }
}

export interface SparkJoinRun {
  strategy: StrategyName;
  joinType: JoinType;
  rows: number;
  fp: number;
  /** The join's tasks, as the JS executor reports its own (rows = records the task read: shuffle + input). */
  tasks: TaskStats[];
  /** Real time of the join's stage(s) on this cluster, ms. */
  stageMs: number;
  /** Client-side time of the statement, ms. */
  wallMs: number;
  rowsShuffled: number;
  stages: number;
}

/** Stages doing the join: reducers of a shuffle (read shuffle, several tasks) or map-side joins (no shuffle read, write only partial aggregates). */
function joinStages(stages: StageSummary[]): StageSummary[] {
  return stages.filter((s) => s.numTasks > 1 && (s.shuffleReadRecords > 0 || (s.shuffleWriteRecords > 0 && s.shuffleWriteRecords <= s.numTasks)));
}

/**
 * Runs one strategy `repeats` times: its settings, its join with the fingerprint on top; then its
 * tasks from the REST API. Each task keeps its fastest run (the first run of a plan in a JVM also
 * pays for generating and compiling its code); every run's answer must be the same.
 */
export async function runSparkStrategy(db: SparkSession, rest: SparkRest, strategy: StrategyName, joinType: JoinType, opts: SparkSkewOptions, repeats = 1): Promise<SparkJoinRun> {
  let best: SparkJoinRun | undefined;
  for (let r = 0; r < Math.max(1, repeats); r++) {
    const run = await runOnce(db, rest, strategy, joinType, opts);
    if (!best) best = run;
    else {
      // Same plan, same data: the same tasks in the same order (stage by stage, by index).
      if (run.rows !== best.rows || run.fp !== best.fp) return { ...run, rows: -1, fp: -1 };
      if (run.tasks.length === best.tasks.length) {
        best.tasks = best.tasks.map((t, i) => ({ ...t, ms: Math.min(t.ms, run.tasks[i]!.ms), wallMs: Math.min(t.wallMs, run.tasks[i]!.wallMs) }));
      }
      best.stageMs = Math.min(best.stageMs, run.stageMs);
      best.wallMs = Math.min(best.wallMs, run.wallMs);
    }
  }
  return best!;
}

/** The join's count and order-independent fingerprint (native.ts computes the same on DuckDB). */
export function fingerprintSql(join: string): string {
  // sum(amount_cents), count(segment): the joined columns are read, as a consumer would (else Spark prunes them away).
  return `SELECT count(*) AS n,
      CAST(coalesce(sum((CAST(payment_id AS BIGINT) * 1000003 + coalesce(matched, 0)) % ${FP_MOD}), 0) % ${FP_MOD} AS BIGINT) AS fp,
      sum(amount_cents) AS amount, count(segment) AS with_segment
    FROM (${join}) j`;
}

async function runOnce(db: SparkSession, rest: SparkRest, strategy: StrategyName, joinType: JoinType, opts: SparkSkewOptions): Promise<SparkJoinRun> {
  const { conf, join } = strategySql(strategy, joinType, opts);
  await setConf(db, conf);
  const sql = fingerprintSql(join);
  const t0 = performance.now();
  const { result, stages } = await rest.stagesOf(() => db.query<{ n: number; fp: number }>(sql));
  const wallMs = performance.now() - t0;
  const js = joinStages(stages);
  const tasks: TaskStats[] = [];
  let stageMs = 0;
  for (const s of js) {
    const list = (await rest.tasks(s.stageId, s.attemptId)).filter((t) => t.status === 'SUCCESS');
    list.sort((a, b) => a.index - b.index);
    tasks.push(...list.map((t) => taskStats(t, s, strategy, opts.partitions)));
    if (s.submissionTime && s.completionTime) stageMs += Date.parse(s.completionTime.replace('GMT', 'Z')) - Date.parse(s.submissionTime.replace('GMT', 'Z'));
  }
  const written = stages.reduce((a, s) => a + s.shuffleWriteRecords, 0) - js.reduce((a, s) => a + s.shuffleWriteRecords, 0);
  return { strategy, joinType, rows: Number(result[0]!.n), fp: Number(result[0]!.fp), tasks, stageMs, wallMs, rowsShuffled: written, stages: stages.length };
}

export const setConf = (db: SparkSession, conf: Record<string, string>) => db.setConf(conf);

function taskStats(t: TaskMetricsRow, stage: StageSummary, strategy: StrategyName, partitions: number): TaskStats {
  const shuffled = t.shuffleReadRecords > 0 || (stage.shuffleReadRecords > 0 && t.inputRecords === 0);
  const split = shuffled && strategy === 'skew-split' && stage.numTasks > partitions;
  const rows = t.shuffleReadRecords + t.inputRecords;
  return {
    name: `stage ${stage.stageId} task ${t.index}`,
    // A reducer's index is its partition (AQE's pieces of a split partition have their own indexes).
    partition: shuffled && !split && stage.numTasks === partitions ? t.index : -1,
    kind: split ? 'split' : shuffled ? 'shuffle' : 'broadcast',
    // Spark reports records read per task, both sides together: all counted as factRows.
    factRows: rows,
    dimRows: 0,
    inputRows: rows,
    outputRows: 0,
    // CPU time, as the JS executor measures its tasks: on a shared machine a task's run time also
    // counts the time other processes held the core.
    ms: t.cpuMs,
    wallMs: t.runMs,
  };
}
