import type { Pitfall } from '../contract.ts';
import { NULL_KEY, partitionOf, rowSalt, type SaltMapTask, type SkewImpl } from '../../pipelines/skew/index.ts';

type MapRows = Parameters<SaltMapTask>[0];
type MapCtx = Parameters<SaltMapTask>[1];

/**
 * The map step the four wrong variants share with the reference: NULL keys, cold keys and hot
 * keys each get a partition and a salt. Each pitfall changes one decision, named by its hook.
 */
function saltedMap(v: {
  /** Keep left-join fact rows whose key is NULL (they must survive with no match). */
  keepNullKeys: boolean;
  /** Which keys are salted. */
  salted(key: number, ctx: MapCtx): boolean;
  /** The salt of a salted big-side (fact) row. */
  factSalt(i: number, rows: MapRows, ctx: MapCtx): number;
  /** The salts a salted small-side row is sent with. */
  smallSideSalts(i: number, rows: MapRows, ctx: MapCtx): number[];
}): SaltMapTask {
  return (rows, ctx, emit) => {
    const P = ctx.partitions;
    for (let i = 0; i < rows.keys.length; i++) {
      const key = rows.keys[i]!;
      if (key === NULL_KEY) {
        if (v.keepNullKeys && ctx.side === 'fact' && ctx.joinType === 'left') emit(i, rowSalt(rows.ids[i]!, P), 0);
        continue;
      }
      if (!v.salted(key, ctx)) {
        emit(i, partitionOf(key, 0, P), 0);
        continue;
      }
      const salts = ctx.side === 'fact' ? [v.factSalt(i, rows, ctx)] : v.smallSideSalts(i, rows, ctx);
      for (const salt of salts) emit(i, partitionOf(key, salt, P), salt);
    }
  };
}

const hot = (key: number, ctx: MapCtx) => ctx.hotKeys.has(key);
const randomSalt = (_i: number, _rows: MapRows, ctx: MapCtx) => Math.floor(ctx.rand() * ctx.saltFactor);
const identitySalt = (i: number, rows: MapRows, ctx: MapCtx) => rowSalt(rows.ids[i]!, ctx.saltFactor);
const everySalt = (_i: number, _rows: MapRows, ctx: MapCtx) => Array.from({ length: ctx.saltFactor }, (_, salt) => salt);

/** The textbook salted join: hot rows get `floor(rand() * K)`. Right answer on one run; wrong after a retry. */
export const saltWithRand = saltedMap({ keepNullKeys: true, salted: hot, factSalt: randomSalt, smallSideSalts: everySalt });

/** Both sides salted the same way, with independent random salts: no replication of the small side. */
const saltBothSidesRandomly = saltedMap({
  keepNullKeys: true,
  salted: hot,
  factSalt: randomSalt,
  smallSideSalts: (i, rows, ctx) => [randomSalt(i, rows, ctx)],
});

/** Every key salted (deterministically), every small-side row copied K times. */
const saltEveryKey = saltedMap({ keepNullKeys: true, salted: () => true, factSalt: identitySalt, smallSideSalts: everySalt });

/** Salting done right, except that rows without a key are filtered out up front ("NULLs can't join anyway") — in a left join too. */
const dropNullKeys = saltedMap({ keepNullKeys: false, salted: hot, factSalt: identitySalt, smallSideSalts: everySalt });

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
