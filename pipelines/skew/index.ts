/**
 * Skewed joins on a visible "cluster": shuffle into P partitions, one task per partition,
 * measured task times, simulated makespan on E executors — and the strategies that fix a hot key.
 *
 *   hash.ts        partitioner, row-identity salt, NULL_KEY
 *   detect.ts      hot keys by sampling (estimated vs exact counts)
 *   salt.ts        the salted map side (reference)
 *   strategies.ts  plain, salted, isolated, broadcast, skew-split — one interface
 *   executor.ts    runs the tasks, measures each; makespan scheduling
 *   answer.ts      exact multiset comparison of joined rows; fingerprint shared with SQL
 *   native.ts      the same join on DuckDB: the answer and the floor
 *   retry.ts       a map task run twice: does every row go to the same reducer?
 */
export * from './types.ts';
export * from './hash.ts';
export * from './detect.ts';
export * from './salt.ts';
export * from './strategies.ts';
export * from './executor.ts';
export * from './answer.ts';
export * from './native.ts';
export * from './retry.ts';
