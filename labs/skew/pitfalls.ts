import type { Pitfall } from '../contract.ts';
import { NULL_KEY, partitionOf, rowSalt, type SaltMapTask, type SkewImpl } from '../../pipelines/skew/index.ts';

/** The textbook salted join: hot rows get `floor(rand() * K)`. Right answer on one run; wrong after a retry. */
export const saltWithRand: SaltMapTask = (rows, ctx, emit) => {
  const { hotKeys, saltFactor: K, partitions: P } = ctx;
  for (let i = 0; i < rows.keys.length; i++) {
    const key = rows.keys[i]!;
    if (key === NULL_KEY) {
      if (ctx.side === 'fact' && ctx.joinType === 'left') emit(i, rowSalt(rows.ids[i]!, P), 0);
    } else if (!hotKeys.has(key)) emit(i, partitionOf(key, 0, P), 0);
    else if (ctx.side === 'fact') {
      const salt = Math.floor(ctx.rand() * K);
      emit(i, partitionOf(key, salt, P), salt);
    } else for (let salt = 0; salt < K; salt++) emit(i, partitionOf(key, salt, P), salt);
  }
};

/** Both sides salted the same way, with independent random salts: no replication of the small side. */
const saltBothSidesRandomly: SaltMapTask = (rows, ctx, emit) => {
  const { hotKeys, saltFactor: K, partitions: P } = ctx;
  for (let i = 0; i < rows.keys.length; i++) {
    const key = rows.keys[i]!;
    if (key === NULL_KEY) {
      if (ctx.side === 'fact' && ctx.joinType === 'left') emit(i, rowSalt(rows.ids[i]!, P), 0);
    } else if (!hotKeys.has(key)) emit(i, partitionOf(key, 0, P), 0);
    else {
      const salt = Math.floor(ctx.rand() * K);
      emit(i, partitionOf(key, salt, P), salt);
    }
  }
};

/** Every key salted (deterministically), every small-side row copied K times. */
const saltEveryKey: SaltMapTask = (rows, ctx, emit) => {
  const { saltFactor: K, partitions: P } = ctx;
  for (let i = 0; i < rows.keys.length; i++) {
    const key = rows.keys[i]!;
    if (key === NULL_KEY) {
      if (ctx.side === 'fact' && ctx.joinType === 'left') emit(i, rowSalt(rows.ids[i]!, P), 0);
    } else if (ctx.side === 'fact') {
      const salt = rowSalt(rows.ids[i]!, K);
      emit(i, partitionOf(key, salt, P), salt);
    } else for (let salt = 0; salt < K; salt++) emit(i, partitionOf(key, salt, P), salt);
  }
};

/** Salting done right, except that rows without a key are filtered out up front — in a left join too. */
const dropNullKeys: SaltMapTask = (rows, ctx, emit) => {
  const { hotKeys, saltFactor: K, partitions: P } = ctx;
  for (let i = 0; i < rows.keys.length; i++) {
    const key = rows.keys[i]!;
    if (key === NULL_KEY) continue; // "NULLs can't join anyway"
    if (!hotKeys.has(key)) emit(i, partitionOf(key, 0, P), 0);
    else if (ctx.side === 'fact') {
      const salt = rowSalt(rows.ids[i]!, K);
      emit(i, partitionOf(key, salt, P), salt);
    } else for (let salt = 0; salt < K; salt++) emit(i, partitionOf(key, salt, P), salt);
  }
};

export const skewPitfalls: Pitfall<SkewImpl>[] = [
  {
    name: 'rand-salt-under-retry',
    title: 'salts hot rows with rand(): a re-run map task sends rows to other reducers',
    description:
      'The salt in most blog posts is `floor(rand() * K)`. One run gives the right answer, but a map task is re-run when its ' +
      'output is lost, and its rows (fetched from an earlier shuffle) can arrive in another order: the same per-task rand() ' +
      'stream then gives them other salts, so some rows reach a reducer that already finished (lost) and some reach two (duplicated).',
    impl: { saltHotKeys: saltWithRand },
  },
  {
    name: 'independent-random-salts',
    title: 'salts both sides with independent random salts instead of replicating the small side',
    description:
      'Salting "both sides the same way" looks symmetric, but a big-side row with salt 3 only meets small-side rows with salt 3. ' +
      'The merchant row gets one random salt, so about (K−1)/K of its payments find no match: dropped from an inner join, ' +
      'left without their merchant in a left join.',
    impl: { saltHotKeys: saltBothSidesRandomly },
  },
  {
    name: 'salt-every-key',
    title: 'salts every key, not just the hot ones',
    description:
      'Simpler code — no detection step — and the answer is still right. But every small-side row is copied K times: the shuffle ' +
      'carries (K−1) × |merchants| extra rows to fix a skew that only a dozen keys cause, for no real balance gain on keys that were never hot.',
    impl: { saltHotKeys: saltEveryKey },
  },
  {
    name: 'drop-null-keys',
    title: 'filters out NULL join keys while salting, in a left join too',
    description:
      '"NULL never matches, so drop those rows before the shuffle" is right for an inner join and wrong for a left join: every ' +
      'payment without a merchant must still come out, with NULL merchant columns. The salting rewrite silently loses them.',
    impl: { saltHotKeys: dropNullKeys },
  },
];
