/**
 * Fault injection for the compactor's verification: rewrites that look fine and are not.
 * Bugs of this kind are real — a type or unit mismatch in the rewrite job, a filter or dedup
 * that should not be there — and nothing but a content check notices them before readers do.
 */
import { rewritePartition, type RewriteFn } from './compact.ts';

export type RewriteFault = 'drop-row' | 'change-value';

/**
 * The reference rewrite with one defect:
 *   drop-row      loses the row with the smallest event_id (the row count changes)
 *   change-value  adds one cent to that row's amount_cents (the row count does not change)
 */
export function faultyRewrite(fault: RewriteFault): RewriteFn {
  return (db, sourceSql, out) => {
    const src = `(${sourceSql})`;
    const victim = `(SELECT min(event_id) FROM ${src} victim_src)`;
    const faulty =
      fault === 'drop-row'
        ? `SELECT * FROM ${src} s WHERE event_id <> ${victim}`
        : `SELECT * REPLACE (CASE WHEN event_id = ${victim} THEN amount_cents + 1 ELSE amount_cents END AS amount_cents) FROM ${src} s`;
    return rewritePartition(db, faulty, out);
  };
}
