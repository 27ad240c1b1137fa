/**
 * The reconcilers people write first. Each one runs on the same real engines and the same
 * seeded data as the reference, and the same claim checks must reject it.
 */
import type { Pitfall } from '../contract.ts';
import {
  canonicalPayload,
  compareCounts,
  compareRowSets,
  fullPullDiff,
  valuesDiffer,
  type ColumnSpec,
  type ComparableRow,
  type Reconciler,
} from '../../pipelines/reconciliation/index.ts';

/** SQL's `s.col <> t.col`: a NULL on either side makes the comparison unknown, and WHERE drops the row. */
function sqlNotEquals(c: ColumnSpec, a: string | number | null, b: string | number | null): boolean {
  const isNull = (v: string | number | null) => v === null || (typeof v === 'string' && canonicalPayload(c.kind, v) === null); // ':' / ';' are canonical NULLs
  if (isNull(a) || isNull(b)) return false;
  return valuesDiffer(c, a, b);
}

/** `a = b` on doubles, as `WHERE s.amount <> t.amount` does: no tolerance. */
function exactEquality(c: ColumnSpec, a: string | number | null, b: string | number | null): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a !== b;
  return valuesDiffer(c, a, b);
}

/** Keys as a set: `SELECT DISTINCT key … EXCEPT …`, then one row per key joined — later copies overwrite earlier ones. */
function oneRowPerKey(rows: readonly ComparableRow[]): ComparableRow[] {
  return [...new Map(rows.map((r) => [r.key, r])).values()];
}

const neqComparison: Reconciler = {
  diff: (source, target, spec) => fullPullDiff(source, target, spec, { compare: (sp, s, t) => compareRowSets(sp, s, t, sqlNotEquals) }),
};

const keySetDifference: Reconciler = {
  diff: (source, target, spec) => fullPullDiff(source, target, spec, { compare: (sp, s, t) => compareRowSets(sp, oneRowPerKey(s), oneRowPerKey(t)) }),
};

const countOnly: Reconciler = {
  async diff(source, target) {
    await compareCounts(source, target);
    // Equal or not, a count names no key: there is nothing to report per row.
    return { diffs: [], rowsFetched: 0 };
  },
};

const floatEquality: Reconciler = {
  diff: (source, target, spec) => fullPullDiff(source, target, spec, { compare: (sp, s, t) => compareRowSets(sp, s, t, exactEquality) }),
};

export const reconciliationPitfalls: Pitfall<Reconciler>[] = [
  {
    name: 'neq-comparison',
    title: 'compares values with <> (misses NULL changes)',
    description:
      'A join on the key with WHERE s.col <> t.col is the textbook value check. But NULL <> \'x\' is NULL, not TRUE, so every ' +
      'NULL → value, value → NULL and \'\' → NULL change is filtered out — the changes a broken pipeline makes most often.',
    impl: neqComparison,
  },
  {
    name: 'key-set-difference',
    title: 'reconciles keys as sets (misses duplicated keys)',
    description:
      'Missing/extra keys computed with SELECT DISTINCT key … EXCEPT. A row loaded twice has its key on both sides, so the ' +
      'set difference is empty and the join compares one copy: double loads — the classic non-idempotent retry — pass.',
    impl: keySetDifference,
  },
  {
    name: 'count-only',
    title: 'reconciles row counts only',
    description:
      'count(*) on both sides is cheap and says nothing about which rows differ, or whether values survived: changed values, ' +
      'NULLed columns and a missing row offset by a duplicate all keep the counts equal or unexplained.',
    impl: countOnly,
  },
  {
    name: 'float-equality',
    title: 'compares floats for exact equality (false alarms across engines)',
    description:
      'The source stores NUMERIC(12,2), the target a DOUBLE computed as unit price × 0.01 × qty. 0.1 × 3 is 0.30000000000000004, ' +
      'so exact equality flags rows that are equal to the cent — thousands of false alarms bury the real differences.',
    impl: floatEquality,
  },
];
