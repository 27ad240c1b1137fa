/**
 * Hot-key detection by sampling: count keys in a Bernoulli sample of the big side, scale the
 * counts up, call a key hot when its estimated share of rows reaches a threshold. The exact
 * counts (one full pass) are computed too, only to show how good the estimate was.
 */
import type { Prng } from '../../fixtures/prng.ts';
import { NULL_KEY } from './hash.ts';
import type { FactTable } from './types.ts';

export interface DetectOptions {
  /** Fraction of rows sampled, e.g. 0.01. */
  sampleRate: number;
  /**
   * …but never fewer rows than this (all rows of a smaller table): the error of an estimated
   * share depends on how many rows were sampled, not on the rate. 20,000 sampled rows see a key
   * at 1% about 200 times, so it cannot fall under a 0.5% threshold by chance.
   */
  minSampleRows: number;
  /** A key is hot when its estimated share of all rows is at least this, e.g. 0.005. */
  hotShare: number;
}

export interface HotKey {
  key: number;
  sampled: number;
  /** sampled / effective rate. */
  estimatedCount: number;
  exactCount: number;
  /** |estimated − exact| / exact. */
  relError: number;
}

export interface Detection extends DetectOptions {
  rows: number;
  /** The rate actually used: sampleRate, raised to reach minSampleRows on a small table. */
  effectiveRate: number;
  sampledRows: number;
  hot: HotKey[];
  hotKeys: Set<number>;
  /** Keys whose exact share is ≥ 2 × hotShare: each must be found. */
  mustFind: { key: number; exactCount: number; found: boolean }[];
  recall: number;
  maxRelError: number;
  /** Found keys whose exact share is below hotShare / 2 (a wasted salt, not a wrong answer). */
  falsePositives: number;
  /** Share of NULL keys in the sample (never salted: they match nothing). */
  nullShareEstimate: number;
}

export function detectHotKeys(fact: FactTable, opts: DetectOptions, rng: Prng): Detection {
  const keys = fact.key;
  let maxKey = 0;
  for (let i = 0; i < keys.length; i++) if (keys[i]! > maxKey) maxKey = keys[i]!;
  const sampleCounts = new Int32Array(maxKey + 1);
  const rate = Math.min(1, Math.max(opts.sampleRate, opts.minSampleRows / Math.max(1, keys.length)));
  let sampled = 0;
  let sampledNull = 0;
  for (let i = 0; i < keys.length; i++) {
    if (rng.next() >= rate) continue;
    sampled++;
    const k = keys[i]!;
    if (k === NULL_KEY) sampledNull++;
    else sampleCounts[k]!++;
  }
  const exact = new Int32Array(maxKey + 1);
  for (let i = 0; i < keys.length; i++) if (keys[i] !== NULL_KEY) exact[keys[i]!]!++;

  const hot: HotKey[] = [];
  const minSampled = Math.max(1, opts.hotShare * sampled);
  for (let k = 0; k <= maxKey; k++) {
    const c = sampleCounts[k]!;
    if (c === 0 || c < minSampled) continue;
    const estimatedCount = Math.round(c / rate);
    const exactCount = exact[k]!;
    hot.push({ key: k, sampled: c, estimatedCount, exactCount, relError: exactCount === 0 ? Infinity : Math.abs(estimatedCount - exactCount) / exactCount });
  }
  hot.sort((a, b) => b.estimatedCount - a.estimatedCount || a.key - b.key);
  const hotKeys = new Set(hot.map((h) => h.key));
  const mustFind: Detection['mustFind'] = [];
  for (let k = 0; k <= maxKey; k++) {
    if (exact[k]! >= 2 * opts.hotShare * keys.length) mustFind.push({ key: k, exactCount: exact[k]!, found: hotKeys.has(k) });
  }
  mustFind.sort((a, b) => b.exactCount - a.exactCount);
  return {
    ...opts,
    rows: keys.length,
    effectiveRate: rate,
    sampledRows: sampled,
    hot,
    hotKeys,
    mustFind,
    recall: mustFind.length === 0 ? 1 : mustFind.filter((m) => m.found).length / mustFind.length,
    maxRelError: hot.reduce((m, h) => Math.max(m, h.relError), 0),
    falsePositives: hot.filter((h) => h.exactCount < (opts.hotShare / 2) * keys.length).length,
    nullShareEstimate: sampled === 0 ? 0 : sampledNull / sampled,
  };
}
