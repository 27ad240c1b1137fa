/**
 * The join strategies, all behind one interface: a strategy turns the two tables into tasks
 * (the map side: which rows go to which task, with which salt, copied how many times). The
 * executor then runs the tasks the same way for every strategy.
 */
import { Prng } from '../../fixtures/prng.ts';
import { LabError } from '../errors.ts';
import { SALT_SPACE } from './executor.ts';
import { NULL_KEY, mix32, nullPartition, partitionOf } from './hash.ts';
import type { JoinTask, JoinType, MapTaskRows, Plan, SaltMapTask, SkewTables, StrategyName } from './types.ts';

export interface StrategyOptions {
  joinType: JoinType;
  /** P: reducers of the shuffle. */
  partitions: number;
  /** Map tasks (input splits) per table. */
  mapTasks: number;
  /** Hot keys found by sampling (salted, isolated). */
  hotKeys: ReadonlySet<number>;
  /** K (salted). */
  saltFactor: number;
  /** Seeds each map task's rand() stream. */
  seed: number;
  /** skew-split: a partition is skewed above this × the median partition (Spark AQE's default: 5). */
  skewFactor?: number;
}

export interface JoinStrategy {
  name: StrategyName;
  /** One line: what it does. */
  title: string;
  plan(tables: SkewTables, opts: StrategyOptions): Plan;
}

/** Growable (row, partition, salt) triples: the copies a map side emits. */
class CopyBuffer {
  row: Int32Array;
  part: Int32Array;
  salt: Int32Array;
  n = 0;
  constructor(capacity: number) {
    this.row = new Int32Array(Math.max(16, capacity));
    this.part = new Int32Array(Math.max(16, capacity));
    this.salt = new Int32Array(Math.max(16, capacity));
  }
  push(row: number, part: number, salt: number): void {
    if (this.n === this.row.length) {
      const grow = (a: Int32Array) => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.row = grow(this.row);
      this.part = grow(this.part);
      this.salt = grow(this.salt);
    }
    this.row[this.n] = row;
    this.part[this.n] = part;
    this.salt[this.n] = salt;
    this.n++;
  }
  /** Copies grouped by partition (a counting sort: stable, so each partition keeps map-task order). */
  byPartition(partitions: number): { rows: Int32Array[]; salts: Int32Array[] } {
    const counts = new Int32Array(partitions);
    for (let i = 0; i < this.n; i++) counts[this.part[i]!]!++;
    const rows = Array.from(counts, (c) => new Int32Array(c));
    const salts = Array.from(counts, (c) => new Int32Array(c));
    const fill = new Int32Array(partitions);
    for (let i = 0; i < this.n; i++) {
      const p = this.part[i]!;
      rows[p]![fill[p]!] = this.row[i]!;
      salts[p]![fill[p]!] = this.salt[i]!;
      fill[p]!++;
    }
    return { rows, salts };
  }
}

/** Row ranges of the input splits: map task m reads rows [start, end). */
export function splits(rows: number, mapTasks: number): [number, number][] {
  const m = Math.max(1, Math.min(mapTasks, rows || 1));
  return Array.from({ length: m }, (_, i) => [Math.floor((i * rows) / m), Math.floor(((i + 1) * rows) / m)] as [number, number]);
}

/** A map task's rand() stream: seeded by (run seed, side, map task), so a retry draws the same numbers. */
export function mapTaskRand(seed: number, side: 'fact' | 'dim', mapTask: number): () => number {
  const rng = new Prng(mix32(seed ^ mix32(mapTask * 2 + (side === 'fact' ? 0 : 1) + 0x51a7)));
  return () => rng.next();
}

/**
 * Runs a salted map task over every split of both tables and checks what it emits: a partition
 * out of range is a bug in the map task, reported as such (not a crash deep in the executor).
 */
export function runSaltMapTasks(tables: SkewTables, saltMapTask: SaltMapTask, opts: StrategyOptions): { fact: CopyBuffer; dim: CopyBuffer } {
  const P = opts.partitions;
  const side = (name: 'fact' | 'dim', ids: Int32Array, keys: Int32Array) => {
    const buf = new CopyBuffer(name === 'fact' ? ids.length : ids.length + 64);
    splits(ids.length, opts.mapTasks).forEach(([start, end], m) => {
      const rows: MapTaskRows = { ids: ids.subarray(start, end), keys: keys.subarray(start, end) };
      const n = end - start;
      saltMapTask(rows, { side: name, joinType: opts.joinType, hotKeys: opts.hotKeys, saltFactor: opts.saltFactor, partitions: P, rand: mapTaskRand(opts.seed, name, m) }, (row, partition, salt) => {
        // (x >>> 0) === x: a non-negative 32-bit integer — one cheap test per emitted copy.
        if ((row >>> 0) !== row || row >= n) throw new LabError(`salted map task (${name} side) emitted row ${row}: rows of this task are 0..${n - 1}`);
        if ((partition >>> 0) !== partition || partition >= P) throw new LabError(`salted map task (${name} side) emitted partition ${partition}: reducers are 0..${P - 1}`);
        if ((salt >>> 0) !== salt || salt >= SALT_SPACE) throw new LabError(`salted map task (${name} side) emitted salt ${salt}: salts are integers 0..${SALT_SPACE - 1}`);
        buf.push(start + row, partition, salt);
      });
    });
    return buf;
  };
  return { fact: side('fact', tables.fact.id, tables.fact.key), dim: side('dim', tables.dim.key, tables.dim.key) };
}

function shuffleTasks(fact: CopyBuffer, dim: CopyBuffer, partitions: number, salted: boolean): JoinTask[] {
  const f = fact.byPartition(partitions);
  const d = dim.byPartition(partitions);
  return Array.from({ length: partitions }, (_, p) => ({
    name: `p${String(p).padStart(2, '0')}`,
    partition: p,
    kind: 'shuffle' as const,
    fact: f.rows[p]!,
    factSalt: salted ? f.salts[p]! : null,
    dim: d.rows[p]!,
    dimSalt: salted ? d.salts[p]! : null,
  }));
}

/** partitionOf(key, 0, P) for every key of the tables, computed once per (tables, P): the shuffle's hot loop becomes a lookup. */
const homeCache = new WeakMap<SkewTables, Map<number, Int32Array>>();
function homePartitions(tables: SkewTables, P: number): Int32Array {
  let byP = homeCache.get(tables);
  if (!byP) homeCache.set(tables, (byP = new Map()));
  let home = byP.get(P);
  if (!home) {
    let maxKey = 0;
    for (const k of tables.fact.key) if (k > maxKey) maxKey = k;
    for (const k of tables.dim.key) if (k > maxKey) maxKey = k;
    home = new Int32Array(maxKey + 1);
    for (let k = 0; k <= maxKey; k++) home[k] = partitionOf(k, 0, P);
    byP.set(P, home);
  }
  return home;
}

/** Plain hash partitioning: the map side of every shuffled row, no salt. */
function plainCopies(tables: SkewTables, opts: StrategyOptions, skip?: (key: number) => boolean) {
  const P = opts.partitions;
  const home = homePartitions(tables, P);
  const fact = new CopyBuffer(tables.fact.key.length);
  const nullP = nullPartition(P);
  const keepNull = opts.joinType === 'left';
  const fKey = tables.fact.key;
  for (let i = 0; i < fKey.length; i++) {
    const k = fKey[i]!;
    if (skip && skip(k)) continue;
    // An inner join can never match a NULL key, so it is filtered before the shuffle (Spark infers
    // `IS NOT NULL`); a left join must keep the row, and hash(NULL) sends every one to one reducer.
    if (k === NULL_KEY) {
      if (keepNull) fact.push(i, nullP, 0);
    } else fact.push(i, home[k]!, 0);
  }
  const dim = new CopyBuffer(tables.dim.key.length);
  const dKey = tables.dim.key;
  for (let j = 0; j < dKey.length; j++) {
    const k = dKey[j]!;
    if (k !== NULL_KEY && !(skip && skip(k))) dim.push(j, home[k]!, 0);
  }
  return { fact, dim };
}

function timed(strategy: StrategyName, build: () => Omit<Plan, 'planMs' | 'strategy'>): Plan {
  const t0 = performance.now();
  const p = build();
  return { strategy, ...p, planMs: performance.now() - t0 };
}

const sumRows = (tasks: JoinTask[], side: 'fact' | 'dim') => tasks.reduce((s, t) => s + t[side].length, 0);

export const plainStrategy: JoinStrategy = {
  name: 'plain',
  title: 'hash-partition both sides on the key: every row of a key meets on one reducer',
  plan: (tables, opts) =>
    timed('plain', () => {
      const { fact, dim } = plainCopies(tables, opts);
      const tasks = shuffleTasks(fact, dim, opts.partitions, false);
      return { tasks, rowsShuffled: fact.n + dim.n, rowsBroadcast: 0 };
    }),
};

/** Salting, with the map side supplied (the lab's reference, a pitfall, or a learner's exercise). */
export function saltedStrategy(saltMapTask: SaltMapTask): JoinStrategy {
  return {
    name: 'salted',
    title: 'hot keys spread over K salts on the big side, their small-side rows copied K times',
    plan: (tables, opts) =>
      timed('salted', () => {
        const { fact, dim } = runSaltMapTasks(tables, saltMapTask, opts);
        return { tasks: shuffleTasks(fact, dim, opts.partitions, true), rowsShuffled: fact.n + dim.n, rowsBroadcast: 0 };
      }),
  };
}

/** Indexes i in [start, end) whose key passes `keep`. */
function rowsWhere(keys: Int32Array, start: number, end: number, keep: (key: number) => boolean): Int32Array {
  const out = new Int32Array(end - start);
  let n = 0;
  for (let i = start; i < end; i++) if (keep(keys[i]!)) out[n++] = i;
  return out.subarray(0, n);
}

/** The small side's rows with a (non-NULL) key passing `keep`: what a broadcast ships to every task. */
function dimRowsWhere(tables: SkewTables, keep: (key: number) => boolean): Int32Array {
  return rowsWhere(tables.dim.key, 0, tables.dim.key.length, (k) => k !== NULL_KEY && keep(k));
}

export const broadcastStrategy: JoinStrategy = {
  name: 'broadcast',
  title: 'no shuffle of the big side: the whole small side is copied to every map task',
  plan: (tables, opts) =>
    timed('broadcast', () => {
      const dimAll = dimRowsWhere(tables, () => true);
      const keep = opts.joinType === 'left' ? () => true : (k: number) => k !== NULL_KEY;
      const tasks: JoinTask[] = splits(tables.fact.key.length, opts.mapTasks).map(([start, end], m) => ({
        name: `bcast${String(m).padStart(2, '0')}`,
        partition: -1,
        kind: 'broadcast' as const,
        fact: rowsWhere(tables.fact.key, start, end, keep),
        factSalt: null,
        dim: dimAll,
        dimSalt: null,
      }));
      return { tasks, rowsShuffled: 0, rowsBroadcast: dimAll.length * tasks.length };
    }),
};

export const isolatedStrategy: JoinStrategy = {
  name: 'isolated',
  title: 'hot keys joined map-side against a broadcast of their few small-side rows; the rest shuffled as usual',
  plan: (tables, opts) =>
    timed('isolated', () => {
      const hot = opts.hotKeys;
      // Rows that never need a reducer: hot keys, and (left join) NULL keys, which match nothing anyway.
      const mapSide = (k: number) => hot.has(k) || (k === NULL_KEY && opts.joinType === 'left');
      const { fact, dim } = plainCopies(tables, opts, mapSide);
      const shuffled = shuffleTasks(fact, dim, opts.partitions, false);
      const hotDim = dimRowsWhere(tables, (k) => hot.has(k));
      const broadcast: JoinTask[] = splits(tables.fact.key.length, opts.mapTasks).map(([start, end], m) => ({
        name: `hot${String(m).padStart(2, '0')}`,
        partition: -1,
        kind: 'broadcast' as const,
        fact: rowsWhere(tables.fact.key, start, end, mapSide),
        factSalt: null,
        dim: hotDim,
        dimSalt: null,
      }));
      return { tasks: [...shuffled, ...broadcast], rowsShuffled: fact.n + dim.n, rowsBroadcast: hotDim.length * broadcast.length };
    }),
};

export const skewSplitStrategy: JoinStrategy = {
  name: 'skew-split',
  title: 'adaptive (AQE-style): after the shuffle, split oversized partitions along map-output blocks and copy the matching small partition to each piece',
  plan: (tables, opts) =>
    timed('skew-split', () => {
      const P = opts.partitions;
      const factor = opts.skewFactor ?? 5;
      const { fact, dim } = plainCopies(tables, opts);
      const f = fact.byPartition(P);
      const d = dim.byPartition(P);
      // Map-output statistics: rows per partition, and where each map task's block ends in it.
      const bounds = splits(tables.fact.key.length, opts.mapTasks);
      const sizes = f.rows.map((r, p) => r.length + d.rows[p]!.length);
      const median = [...sizes].sort((a, b) => a - b)[Math.floor(P / 2)]!;
      const target = Math.max(1, median);
      const tasks: JoinTask[] = [];
      for (let p = 0; p < P; p++) {
        const name = `p${String(p).padStart(2, '0')}`;
        const rows = f.rows[p]!;
        if (sizes[p]! <= factor * median || rows.length === 0) {
          tasks.push({ name, partition: p, kind: 'shuffle', fact: rows, factSalt: null, dim: d.rows[p]!, dimSalt: null });
          continue;
        }
        // A partition can only be cut between map-output blocks (one block per map task), never inside one.
        const blockEnds: number[] = [];
        let b = 0;
        for (let i = 0; i < rows.length; i++) {
          while (rows[i]! >= bounds[b]![1]) {
            if (blockEnds[blockEnds.length - 1] !== i) blockEnds.push(i);
            b++;
          }
        }
        blockEnds.push(rows.length);
        let start = 0;
        let piece = 0;
        for (let e = 0; e < blockEnds.length; e++) {
          const end = blockEnds[e]!;
          const last = e === blockEnds.length - 1;
          const nextEnd = last ? end : blockEnds[e + 1]!;
          // Close the piece once it reaches the target size, or when adding the next block would overshoot it.
          if (last || end - start >= target || nextEnd - start > target * 1.5) {
            if (end > start) {
              tasks.push({ name: `${name}.${piece++}`, partition: p, kind: 'split', fact: rows.subarray(start, end), factSalt: null, dim: d.rows[p]!, dimSalt: null });
              start = end;
            }
          }
        }
      }
      const copiedDim = sumRows(tasks, 'dim') - dim.n;
      return { tasks, rowsShuffled: fact.n + dim.n + copiedDim, rowsBroadcast: 0 };
    }),
};

export const FIXED_STRATEGIES: readonly JoinStrategy[] = [plainStrategy, isolatedStrategy, broadcastStrategy, skewSplitStrategy];
