/**
 * Fault injection for the compactor's verification: rewrites that look fine and are not.
 * Bugs of this kind are real — a type or unit mismatch in the rewrite job, a filter or dedup
 * that should not be there — and nothing but a content check notices them before readers do.
 */
import { rewritePartition, type RewriteFn } from './compact.ts';
import { EVENT_COLUMNS } from './table.ts';

export type RewriteFault = 'drop-row' | 'change-value';

/**
 * The reference rewrite with one defect:
 *   drop-row      loses the row with the smallest event_id (the row count changes)
 *   change-value  adds one cent to that row's amount_cents (the row count does not change)
 */
export function faultyRewrite(fault: RewriteFault): RewriteFn {
  const select = faultySelect(fault, EVENT_COLUMNS);
  return (db, sourceSql, out) => rewritePartition(db, select(sourceSql), out);
}

/**
 * The defect as a SELECT over the rows read, in SQL both DuckDB and Spark take: the reference
 * rewrite's faulty input above, and a Delta compaction job's faulty stage (`rewriteSelect`).
 * `columns`: the source's columns, in order (the partition columns too, where it has them).
 */
export function faultySelect(fault: RewriteFault, columns: readonly string[]): (sourceSql: string) => string {
  return (sourceSql) => {
    const src = `(${sourceSql})`;
    const victim = `(SELECT min(event_id) FROM ${src} victim_src)`;
    if (fault === 'drop-row') return `SELECT ${columns.join(', ')} FROM ${src} s WHERE event_id <> ${victim}`;
    const cols = columns.map((c) => (c === 'amount_cents' ? `CASE WHEN event_id = ${victim} THEN amount_cents + 1 ELSE amount_cents END AS amount_cents` : c));
    return `SELECT ${cols.join(', ')} FROM ${src} s`;
  };
}
