/**
 * Exercise — the salted join's map side.
 *
 * One merchant has 40% of all payments, so with plain hash partitioning one reducer gets 40% of
 * the join and every other reducer waits for it. Fix it by salting — only the hot keys:
 *
 *   - big side (ctx.side === 'fact'), hot key: give the row ONE salt in [0, K) and send it to
 *     partitionOf(key, salt, P);
 *   - small side (ctx.side === 'dim'), hot key: send the row K times, once per salt, so every
 *     salted payment still meets its merchant;
 *   - any other key: partitionOf(key, 0, P), salt 0 (plain hash partitioning);
 *   - NULL key (NULL_KEY): it can never match. Think about what an inner and a left join need.
 *
 * The reducers then join rows with equal (key, salt). `npm run check -- skew` judges this
 * function with the lab's claims: same answer as the plain join (inner and left), balanced
 * partitions, a shuffle cost proportional to the hot keys only, and the same reducer for every
 * row when a map task is retried.
 */
import { NULL_KEY, partitionOf, rowSalt, type SaltMapTask } from '../../../pipelines/skew/index.ts';

export const saltHotKeys: SaltMapTask = (rows, ctx, emit) => {
  // rows.ids[i], rows.keys[i]: the identity and join key of row i of this map task.
  // ctx: side, joinType, hotKeys, saltFactor (K), partitions (P), rand().
  // emit(i, partition, salt): sends one copy of row i.
  for (let i = 0; i < rows.keys.length; i++) {
    const key = rows.keys[i]!;
    // TODO: NULL keys, cold keys, hot keys on the big side, hot keys on the small side.
    void key, ctx, emit, NULL_KEY, partitionOf, rowSalt;
  }
  throw new Error('TODO: implement saltHotKeys');
};
