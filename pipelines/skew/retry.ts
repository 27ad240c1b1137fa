/**
 * Determinism under retry. A map task's output is lost after some reducers already fetched it,
 * so the task runs again and the remaining reducers fetch the new output. If a row goes to a
 * different reducer the second time, it is counted twice (its first reducer already has it and
 * its second one gets it again) or not at all (its second reducer had already finished).
 *
 * The re-run reads the same rows in another order — its input is itself fetched from a shuffle,
 * in whatever order the blocks arrive — with the same per-task rand() seed, as Spark does.
 */
import { Prng } from '../../fixtures/prng.ts';
import { mix32 } from './hash.ts';
import { mapTaskRand, splits, type StrategyOptions } from './strategies.ts';
import type { SaltMapTask, SkewTables } from './types.ts';

export interface RetryResult {
  mapTask: number;
  rows: number;
  /** Rows whose set of reducers differs between the two attempts. */
  moved: number;
  /** With reducers 0..P/2−1 done before the retry: rows no reducer counts, rows counted twice. */
  lost: number;
  duplicated: number;
  example?: string;
}

/** Runs map task `mapTask` of the big side twice (second time in another row order) and compares where each row went. */
export function retryMapTask(tables: SkewTables, saltMapTask: SaltMapTask, opts: StrategyOptions, mapTask: number): RetryResult {
  const [start, end] = splits(tables.fact.id.length, opts.mapTasks)[mapTask]!;
  const n = end - start;
  const ids = tables.fact.id.subarray(start, end);
  const keys = tables.fact.key.subarray(start, end);
  const P = opts.partitions;

  // Where each row went: its reducers, sorted (most rows are emitted once; copies are rare here).
  const attempt = (order: Int32Array): { first: Int32Array; more: Map<number, number[]> } => {
    const first = new Int32Array(n).fill(-1);
    const more = new Map<number, number[]>();
    const rows = { ids: new Int32Array(n), keys: new Int32Array(n) };
    for (let r = 0; r < n; r++) {
      rows.ids[r] = ids[order[r]!]!;
      rows.keys[r] = keys[order[r]!]!;
    }
    const ctx = { side: 'fact' as const, joinType: opts.joinType, hotKeys: opts.hotKeys, saltFactor: opts.saltFactor, partitions: P, rand: mapTaskRand(opts.seed, 'fact', mapTask) };
    saltMapTask(rows, ctx, (row, partition) => {
      const i = order[row]!;
      if (first[i] === -1) first[i] = partition;
      else more.set(i, [...(more.get(i) ?? [first[i]!]), partition].sort((a, b) => a - b));
    });
    return { first, more };
  };
  const destinations = (a: ReturnType<typeof attempt>, i: number): number[] => a.more.get(i) ?? (a.first[i] === -1 ? [] : [a.first[i]!]);
  const identity = Int32Array.from({ length: n }, (_, i) => i);
  const attempt1 = attempt(identity);
  const attempt2 = attempt(Int32Array.from(new Prng(mix32(opts.seed ^ 0x7e7) ^ mapTask).shuffle(Array.from(identity))));

  const done = (p: number) => p < P / 2;
  let moved = 0;
  let lost = 0;
  let duplicated = 0;
  let example: string | undefined;
  let exampleHurts = false;
  for (let i = 0; i < n; i++) {
    if (!attempt1.more.has(i) && !attempt2.more.has(i) && attempt1.first[i] === attempt2.first[i]) continue;
    const a = destinations(attempt1, i);
    const b = destinations(attempt2, i);
    if (a.length === b.length && a.every((p, j) => p === b[j])) continue;
    moved++;
    const delivered = a.filter(done).length + b.filter((p) => !done(p)).length;
    if (delivered < a.length) lost += a.length - delivered;
    if (delivered > a.length) duplicated += delivered - a.length;
    // Prefer an example that shows the damage (lost or doubled), not just a move.
    if (!example || (!exampleHurts && delivered !== a.length)) {
      exampleHurts = delivered !== a.length;
      const fate =
        delivered < a.length
          ? `lost: reducer ${a.join(',')} reads the retry's output, which no longer has it; reducer ${b.join(',')} had already finished`
          : delivered > a.length
            ? `counted twice: reducer ${a.join(',')} already took it from attempt 1, reducer ${b.join(',')} takes it again from attempt 2`
            : 'moved';
      example = `payment ${ids[i]} (merchant ${keys[i]}) goes to reducer ${a.join(',') || '–'} on attempt 1 and ${b.join(',') || '–'} on the retry — ${fate}`;
    }
  }
  return { mapTask, rows: n, moved, lost, duplicated, example };
}
