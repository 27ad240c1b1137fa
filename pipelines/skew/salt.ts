/**
 * The salted join's map side — the reference answer to "one task runs forever, what do you do?".
 *
 * Only the hot keys are salted. On the big side a hot row gets a salt derived from its own
 * identity, so its key's rows spread over K reducers; on the small side the hot key's row is
 * copied once per salt, so every salted big-side row still finds its match. Everything else is
 * plain hash partitioning. The reducers join on (key, salt).
 */
import { NULL_KEY, partitionOf, rowSalt } from './hash.ts';
import type { SaltMapTask } from './types.ts';

export const saltHotKeys: SaltMapTask = (rows, ctx, emit) => {
  const { hotKeys, saltFactor: K, partitions: P } = ctx;
  for (let i = 0; i < rows.keys.length; i++) {
    const key = rows.keys[i]!;
    if (key === NULL_KEY) {
      // NULL matches nothing. An inner join drops the row; a left join must keep it — and since
      // it cannot match, any reducer will do: spread NULLs by row id instead of piling them on one.
      if (ctx.side === 'fact' && ctx.joinType === 'left') emit(i, rowSalt(rows.ids[i]!, P), 0);
      continue;
    }
    if (!hotKeys.has(key)) {
      emit(i, partitionOf(key, 0, P), 0);
    } else if (ctx.side === 'fact') {
      // Salt from the row's identity, never rand(): a retried map task must send every row
      // to the reducer it went to the first time.
      const salt = rowSalt(rows.ids[i]!, K);
      emit(i, partitionOf(key, salt, P), salt);
    } else {
      for (let salt = 0; salt < K; salt++) emit(i, partitionOf(key, salt, P), salt);
    }
  }
};
