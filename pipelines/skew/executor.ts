/**
 * The partitioned hash-join executor: each task (a reducer's partition, or a map-side broadcast
 * task) builds a hash table on its small-side rows and probes it with its big-side rows, matching
 * on (key, salt). Tasks run one after another on this thread and each one's duration is measured;
 * the cluster's makespan is then *simulated* by scheduling those measured durations on E executors.
 *
 * A task's duration is the CPU time it used (process.cpuUsage, µs resolution), its wall time is
 * kept too: on a shared machine a task's wall time also counts the time other processes held the
 * core, which says nothing about the task — in the simulated cluster every task has its own core.
 *
 * Why JS typed arrays and not one DuckDB query per task: a task here is a few milliseconds of
 * probing, and a per-query round trip plus DuckDB's own multi-threading inside a query would blur
 * exactly what the lab measures (one task = one core, duration ∝ its rows). DuckDB is still the
 * referee: it runs the same join natively (native.ts) — the answer every strategy must match and
 * the speed floor.
 */
import { NULL_KEY, mix32 } from './hash.ts';
import type { JoinTask, JoinType, Plan, SkewTables, TaskStats } from './types.ts';

/** Salts are packed with the key into one number: key * SALT_SPACE + salt. */
export const SALT_SPACE = 4096;

/** The joined rows as (fact row index, dim row index or -1 when a left join found no match). */
export interface JoinOutput {
  n: number;
  fact: Int32Array;
  dim: Int32Array;
}

/**
 * The joined rows, materialised: row identities plus the columns a consumer would read
 * (amount from the payment, segment from the merchant). Writing real output columns keeps a
 * task's cost proportional to the rows it produces, as in an engine — not just to its lookups.
 */
export class OutputBuffer {
  fact: Int32Array;
  dim: Int32Array;
  amount: Int32Array;
  segment: Uint8Array;
  n = 0;
  constructor(
    readonly tables: SkewTables,
    capacity: number = tables.fact.id.length,
  ) {
    const c = Math.max(16, capacity);
    this.fact = new Int32Array(c);
    this.dim = new Int32Array(c);
    this.amount = new Int32Array(c);
    this.segment = new Uint8Array(c);
  }
  grow(): void {
    const twice = <T extends Int32Array | Uint8Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(a.length * 2);
      b.set(a);
      return b;
    };
    this.fact = twice(this.fact);
    this.dim = twice(this.dim);
    this.amount = twice(this.amount);
    this.segment = twice(this.segment);
  }
  output(): JoinOutput {
    return { n: this.n, fact: this.fact.subarray(0, this.n), dim: this.dim.subarray(0, this.n) };
  }
}

/**
 * One task: build an open-addressing hash table on the small side's (key, salt), then probe it
 * with the big side, writing joined rows straight into the output columns. Returns output rows.
 */
function joinTask(tables: SkewTables, task: JoinTask, joinType: JoinType, out: OutputBuffer): number {
  const fKey = tables.fact.key;
  const fAmount = tables.fact.amountCents;
  const dKey = tables.dim.key;
  const dSegment = tables.dim.segment;
  const { fact: taskFact, factSalt, dim: taskDim, dimSalt } = task;
  let cap = 16;
  while (cap < taskDim.length * 2) cap *= 2;
  const mask = cap - 1;
  const slotKey = new Int32Array(cap).fill(NULL_KEY);
  const slotSalt = new Int32Array(cap);
  const slotHead = new Int32Array(cap);
  const next = new Int32Array(taskDim.length);
  for (let j = 0; j < taskDim.length; j++) {
    const k = dKey[taskDim[j]!]!;
    if (k === NULL_KEY) continue;
    const salt = dimSalt ? dimSalt[j]! : 0;
    let h = mix32(k * SALT_SPACE + salt) & mask;
    while (slotKey[h] !== NULL_KEY && (slotKey[h] !== k || slotSalt[h] !== salt)) h = (h + 1) & mask;
    if (slotKey[h] === NULL_KEY) {
      slotKey[h] = k;
      slotSalt[h] = salt;
      next[j] = -1;
    } else next[j] = slotHead[h]!;
    slotHead[h] = j;
  }
  const left = joinType === 'left';
  const before = out.n;
  let n = out.n;
  let oFact = out.fact;
  let oDim = out.dim;
  let oAmount = out.amount;
  let oSegment = out.segment;
  const emit = (f: number, d: number) => {
    if (n === oFact.length) {
      out.n = n;
      out.grow();
      ({ fact: oFact, dim: oDim, amount: oAmount, segment: oSegment } = out);
    }
    oFact[n] = f;
    oDim[n] = d;
    oAmount[n] = fAmount[f]!;
    oSegment[n] = d < 0 ? 255 : dSegment[d]!;
    n++;
  };
  for (let i = 0; i < taskFact.length; i++) {
    const f = taskFact[i]!;
    const k = fKey[f]!;
    let j = -1;
    // NULL = anything is unknown, never true: a NULL key matches nothing, not even a NULL.
    if (k !== NULL_KEY) {
      const salt = factSalt ? factSalt[i]! : 0;
      let h = mix32(k * SALT_SPACE + salt) & mask;
      while (slotKey[h] !== NULL_KEY && (slotKey[h] !== k || slotSalt[h] !== salt)) h = (h + 1) & mask;
      if (slotKey[h] !== NULL_KEY) j = slotHead[h]!;
    }
    if (j < 0) {
      if (left) emit(f, -1);
      continue;
    }
    while (j >= 0) {
      emit(f, taskDim[j]!);
      j = next[j]!;
    }
  }
  out.n = n;
  return n - before;
}

export interface ExecuteOptions {
  joinType: JoinType;
  /**
   * Write the output here instead of a fresh buffer (saves allocating ~13 bytes per payment for
   * every run). The previous output in it is overwritten: consume each output before the next run.
   */
  into?: OutputBuffer;
  /**
   * Run the task set this many times and keep each task's fastest duration (the usual way to
   * take GC pauses out of a micro-benchmark).
   */
  repeats?: number;
}

export interface Execution {
  tasks: TaskStats[];
  output: JoinOutput;
  /** Real wall time of the first run on this machine: map side + every task, one thread. */
  wallMs: number;
}

export function executePlan(tables: SkewTables, plan: Plan, opts: ExecuteOptions): Execution {
  const repeats = Math.max(1, opts.repeats ?? 1);
  const best = new Float64Array(plan.tasks.length).fill(Infinity);
  const bestWall = new Float64Array(plan.tasks.length).fill(Infinity);
  const outputRows = new Int32Array(plan.tasks.length);
  let wallMs = 0;
  if (opts.into && opts.into.tables !== tables) throw new Error('executePlan: the output buffer belongs to other tables');
  const buf = opts.into ?? new OutputBuffer(tables);
  for (let r = 0; r < repeats; r++) {
    buf.n = 0;
    const t0 = performance.now();
    plan.tasks.forEach((task, i) => {
      const cpu = process.cpuUsage();
      const s = performance.now();
      outputRows[i] = joinTask(tables, task, opts.joinType, buf);
      bestWall[i] = Math.min(bestWall[i]!, performance.now() - s);
      const used = process.cpuUsage(cpu);
      best[i] = Math.min(best[i]!, (used.user + used.system) / 1000);
    });
    if (r === 0) wallMs = plan.planMs + (performance.now() - t0);
  }
  // Every repeat writes the same rows (the tasks are deterministic): keep the last.
  const output = buf.output();
  const tasks = plan.tasks.map((t, i) => ({
    name: t.name,
    partition: t.partition,
    kind: t.kind,
    factRows: t.fact.length,
    dimRows: t.dim.length,
    inputRows: t.fact.length + t.dim.length,
    outputRows: outputRows[i]!,
    ms: best[i]!,
    wallMs: bestWall[i]!,
  }));
  return { tasks, output, wallMs };
}

/**
 * Makespan of running `durations` in this order on `executors` identical executors, each task
 * going to the first executor that is free (what a scheduler that cannot see the future does).
 */
export function makespan(durations: readonly number[], executors: number): number {
  const free = new Float64Array(Math.max(1, executors));
  for (const d of durations) {
    let e = 0;
    for (let i = 1; i < free.length; i++) if (free[i]! < free[e]!) e = i;
    free[e] = free[e]! + d;
  }
  return Math.max(0, ...free);
}

/** max / mean of the tasks' input rows: 1 is perfect balance; P means one task holds everything. */
export function maxOverMean(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return mean === 0 ? 0 : Math.max(...values) / mean;
}

/** Input rows per reducer partition (tasks of the same partition summed; map-side tasks left out). */
export function partitionRows(tasks: readonly TaskStats[], partitions: number): number[] {
  const rows = new Array<number>(partitions).fill(0);
  for (const t of tasks) if (t.partition >= 0) rows[t.partition] = rows[t.partition]! + t.inputRows;
  return rows;
}
