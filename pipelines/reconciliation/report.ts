/**
 * The reconciliation report: the differences as JSON (one object per differing key) and as a
 * small aligned table for the terminal, plus scoring against a known set of differences.
 */
import type { BisectStats, SegmentNode } from './bisect.ts';
import type { DiffKind, RowDiff } from './spec.ts';

/** What a reconciler hands back: the differences, and what it cost to find them. */
export interface DiffOutcome {
  diffs: RowDiff[];
  /** Rows moved out of the databases (both sides). */
  rowsFetched: number;
  /** Bisection only. */
  stats?: BisectStats;
  tree?: SegmentNode;
}

/** A difference reduced to what identifies it: key, kind, and (for values) the column names. */
export interface DiffIdentity {
  key: number;
  kind: DiffKind;
  columns?: readonly string[];
}

export const identityOf = (d: DiffIdentity | RowDiff): string => {
  const cols = 'columns' in d && d.columns ? d.columns.map((c) => (typeof c === 'string' ? c : c.column)).sort() : [];
  return `${d.key}|${d.kind}|${cols.join(',')}`;
};

export interface Score {
  expected: number;
  found: number;
  matched: number;
  precision: number;
  recall: number;
  /** Expected but not reported (first few, as identities). */
  missed: string[];
  /** Reported but not expected. */
  invented: string[];
}

/** Precision and recall of `found` against the known differences `expected`. */
export function scoreDiffs(expected: readonly (DiffIdentity | RowDiff)[], found: readonly RowDiff[]): Score {
  const want = new Set(expected.map(identityOf));
  const got = new Set(found.map(identityOf));
  const matched = [...got].filter((g) => want.has(g)).length;
  return {
    expected: want.size,
    found: got.size,
    matched,
    precision: got.size === 0 ? (want.size === 0 ? 1 : 0) : matched / got.size,
    recall: want.size === 0 ? 1 : matched / want.size,
    missed: [...want].filter((w) => !got.has(w)),
    invented: [...got].filter((g) => !want.has(g)),
  };
}

/** One line per differing key, for the terminal table and the `--out` table. */
export function diffRows(diffs: readonly RowDiff[]): { key: number; kind: DiffKind; column: string; source: string; target: string }[] {
  const show = (v: string | null) => (v === null ? 'NULL' : JSON.stringify(v));
  return diffs.flatMap((d) => {
    if (d.kind === 'value') return (d.columns ?? []).map((c) => ({ key: d.key, kind: d.kind, column: c.column, source: show(c.source), target: show(c.target) }));
    if (d.kind === 'duplicate') return [{ key: d.key, kind: d.kind, column: '', source: `${d.sourceCount} row(s)`, target: `${d.targetCount} row(s)` }];
    return [{ key: d.key, kind: d.kind, column: '', source: d.kind === 'missing' ? 'row' : '—', target: d.kind === 'extra' ? 'row' : '—' }];
  });
}

/** The report as JSON: counts per kind, then every difference. */
export function diffReportJson(outcome: DiffOutcome): { summary: Record<string, number>; differences: RowDiff[] } {
  const summary: Record<string, number> = { missing: 0, extra: 0, duplicate: 0, value: 0, rows_fetched: outcome.rowsFetched };
  for (const d of outcome.diffs) summary[d.kind] = (summary[d.kind] ?? 0) + 1;
  return { summary, differences: outcome.diffs };
}

/** The differences as an aligned table, ready to print (one difference per line). */
export function renderDiffTable(diffs: readonly RowDiff[], maxRows = 20): string {
  const rows = diffRows(diffs).map((r) => ({ ...r, key: String(r.key) }));
  if (rows.length === 0) return '(no differences)';
  const cols = ['key', 'kind', 'column', 'source', 'target'] as const;
  const shown = rows.slice(0, maxRows);
  const width = cols.map((c) => Math.max(c.length, ...shown.map((r) => r[c].length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === 0 ? v.padStart(width[i]!) : v.padEnd(width[i]!))).join('  ').trimEnd();
  const out = [line([...cols]), width.map((w) => '─'.repeat(w)).join('  '), ...shown.map((r) => line(cols.map((c) => r[c])))];
  if (rows.length > maxRows) out.push(`… ${rows.length - maxRows} more`);
  return out.join('\n');
}
