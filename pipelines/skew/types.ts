/**
 * Shapes of the skew lab: the two tables (columnar, in typed arrays), the map-side salting
 * function a strategy is built from, and the tasks the executor runs.
 */

export type JoinType = 'inner' | 'left';

/** The big side: payments. Row i is payment `id[i]` of merchant `key[i]` (NULL_KEY for NULL). */
export interface FactTable {
  id: Int32Array;
  key: Int32Array;
  amountCents: Int32Array;
}

/** The small side: merchants, one row per merchant (`key` is its primary key). */
export interface DimTable {
  key: Int32Array;
  /** Index into SEGMENTS. */
  segment: Uint8Array;
}

export const SEGMENTS = ['marketplace', 'enterprise', 'smb', 'nonprofit'] as const;

export interface SkewTables {
  fact: FactTable;
  dim: DimTable;
}

/** The rows one map task reads: views on a contiguous split of one table. */
export interface MapTaskRows {
  /** Row identity (payment_id, or merchant_id on the small side). */
  ids: Int32Array;
  /** Join key, NULL_KEY for NULL. */
  keys: Int32Array;
}

export interface SaltContext {
  /** 'fact': the big side, whose hot rows are spread over salts; 'dim': the small side, whose hot rows are replicated. */
  side: 'fact' | 'dim';
  joinType: JoinType;
  /** The hot keys found by sampling. */
  hotKeys: ReadonlySet<number>;
  /** K: how many salts a hot key is spread over. */
  saltFactor: number;
  /** P: reducers (partitions) of the shuffle. */
  partitions: number;
  /**
   * This map task's `rand()` stream, uniform in [0, 1). Like Spark's `rand()`, it is seeded per
   * map task, so a retry draws the same numbers — in whatever order its rows arrive this time.
   */
  rand(): number;
}

/** Sends one copy of row `row` (index into the map task's rows) to reducer `partition`, tagged `salt`. */
export type Emit = (row: number, partition: number, salt: number) => void;

/**
 * The map side of a salted join, for one map task: emit each row to its reducer with its salt.
 * A row may be emitted 0 times (dropped), once, or several times (replicated).
 * The executor then joins, on each reducer, rows with equal (key, salt).
 */
export type SaltMapTask = (rows: MapTaskRows, ctx: SaltContext, emit: Emit) => void;

/** What a lab run, a pitfall or a learner's exercise plugs in: the salted map task. */
export interface SkewImpl {
  saltHotKeys: SaltMapTask;
}

export type StrategyName = 'plain' | 'salted' | 'isolated' | 'broadcast' | 'skew-split';

/** One task of the join: a reducer's partition (shuffle), a map-side broadcast join, or a piece of a split partition. */
export interface JoinTask {
  name: string;
  /** Reducer partition, -1 for a map-side task. */
  partition: number;
  kind: 'shuffle' | 'broadcast' | 'split';
  /** Fact row indexes (into FactTable), and their salts (null: all 0). */
  fact: Int32Array;
  factSalt: Int32Array | null;
  /** Dim row indexes (into DimTable), and their salts (null: all 0). */
  dim: Int32Array;
  dimSalt: Int32Array | null;
}

export interface Plan {
  strategy: StrategyName;
  tasks: JoinTask[];
  /** Rows that crossed the network through the shuffle (both sides, every copy). */
  rowsShuffled: number;
  /** Small-side rows copied to map tasks by a broadcast. */
  rowsBroadcast: number;
  /** Map side (routing) time, ms. */
  planMs: number;
}

export interface TaskStats {
  name: string;
  partition: number;
  kind: JoinTask['kind'];
  factRows: number;
  dimRows: number;
  inputRows: number;
  outputRows: number;
  /** Measured duration of this task on this machine: CPU time (what the simulation schedules). */
  ms: number;
  /** Measured wall time of this task (includes time other processes held the core). */
  wallMs: number;
}
