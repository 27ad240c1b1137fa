/**
 * "Same answer" as an exact multiset comparison of joined rows. A joined row is identified by
 * (payment row, merchant row or none); both tables have unique ids, so per payment row the
 * number of joined rows and the sum of their merchant rows pin the multiset down exactly
 * (a correct join gives each payment 0 or 1 rows; anything else already differs in the count).
 */
import { NULL_KEY } from './hash.ts';
import type { JoinOutput } from './executor.ts';
import type { SkewTables } from './types.ts';

export interface AnswerSignature {
  rows: number;
  count: Int32Array;
  sum: Float64Array;
}

export function answerSignature(factRows: number, out: JoinOutput): AnswerSignature {
  const count = new Int32Array(factRows);
  const sum = new Float64Array(factRows);
  for (let i = 0; i < out.n; i++) {
    const f = out.fact[i]!;
    count[f]!++;
    sum[f]! += out.dim[i]! + 1;
  }
  return { rows: out.n, count, sum };
}

export interface AnswerDiff {
  equal: boolean;
  /** Payment rows whose joined rows differ. */
  differingRows: number;
  /** Joined rows missing from / extra in the candidate, summed over payments. */
  missing: number;
  extra: number;
  /** The first differing payment, described: the counterexample. */
  example?: string;
}

const describeDim = (tables: SkewTables, d: number) => (d < 0 ? 'merchant ∅' : `merchant ${tables.dim.key[d]}`);

function actualRows(out: JoinOutput, f: number, tables: SkewTables): string {
  const found: string[] = [];
  for (let i = 0; i < out.n; i++) if (out.fact[i] === f) found.push(`(payment ${tables.fact.id[f]}, ${describeDim(tables, out.dim[i]!)})`);
  return found.length === 0 ? 'no row' : found.join(' ');
}

function expectedRows(sig: AnswerSignature, f: number, tables: SkewTables): string {
  const c = sig.count[f]!;
  if (c === 0) return 'no row';
  if (c === 1) return `(payment ${tables.fact.id[f]}, ${describeDim(tables, sig.sum[f]! - 1)})`;
  return `${c} rows`;
}

/** Scratch copies of an expected signature, reused by every comparison against it (no 2 × 12 bytes/row allocation each time). */
const scratch = new WeakMap<AnswerSignature, { count: Int32Array; sum: Float64Array }>();

/** Compares a candidate join output with the expected signature (the plain join's). */
export function diffAnswers(tables: SkewTables, expected: AnswerSignature, actualOut: JoinOutput, context: { hotKeys: ReadonlySet<number> }): AnswerDiff {
  let s = scratch.get(expected);
  if (!s) scratch.set(expected, (s = { count: new Int32Array(expected.count.length), sum: new Float64Array(expected.sum.length) }));
  // Start from the expected rows and take away each candidate row: what remains is the difference.
  const count = s.count;
  const sum = s.sum;
  count.set(expected.count);
  sum.set(expected.sum);
  const { fact: oFact, dim: oDim } = actualOut;
  for (let i = 0; i < actualOut.n; i++) {
    const f = oFact[i]!;
    count[f] = count[f]! - 1;
    sum[f] = sum[f]! - (oDim[i]! + 1);
  }
  let differingRows = 0;
  let missing = 0;
  let extra = 0;
  let first = -1;
  for (let f = 0; f < count.length; f++) {
    const c = count[f]!;
    if (c === 0 && sum[f] === 0) continue;
    differingRows++;
    if (first < 0) first = f;
    if (c > 0) missing += c;
    else if (c < 0) extra -= c;
    else {
      missing++;
      extra++;
    }
  }
  if (first < 0) return { equal: true, differingRows: 0, missing: 0, extra: 0 };
  const key = tables.fact.key[first]!;
  const what = key === NULL_KEY ? 'merchant_id NULL' : `merchant_id ${key}${context.hotKeys.has(key) ? ' (hot)' : ''}`;
  return {
    equal: false,
    differingRows,
    missing,
    extra,
    example: `payment ${tables.fact.id[first]} (${what}): expected ${expectedRows(expected, first, tables)}, got ${actualRows(actualOut, first, tables)}`,
  };
}

/**
 * Order-independent fingerprint of joined rows, computed the same way in SQL (native.ts):
 * count, and Σ (payment_id · 1000003 + matched merchant_id or 0) mod (2^31 − 1).
 */
export const FP_MOD = 2147483647;
export function answerFingerprint(tables: SkewTables, out: JoinOutput): { rows: number; fp: number } {
  let acc = 0;
  for (let i = 0; i < out.n; i++) {
    const d = out.dim[i]!;
    acc += (tables.fact.id[out.fact[i]!]! * 1000003 + (d < 0 ? 0 : tables.dim.key[d]!)) % FP_MOD;
    if (acc > 2 ** 52) acc %= FP_MOD;
  }
  return { rows: out.n, fp: acc % FP_MOD };
}
