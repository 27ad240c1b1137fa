/**
 * The quality checks interview answers commonly give, each with one defect. The lab runs them
 * through the same claim checks as the reference; each must be rejected by at least one claim.
 */
import type { Pitfall } from '../contract.ts';
import { compileExpectation, fixedBandDetector, qualityDialect, zScoreDetector, type ExpectationCompiler, type GateWriter } from '../../pipelines/quality/index.ts';
import { referenceImpl, type QualityImpl } from './scenario.ts';

/**
 * Value checks written as the negated condition — `NOT (amount BETWEEN 0 AND 1e6)`, `email !~ p`,
 * `status NOT IN (…)`, `customer_id NOT IN (SELECT …)` — with no NULL outcome: for a NULL value the
 * predicate is NULL, which every CASE and WHERE reads as "not failing".
 */
const nullBlindCompile: ExpectationCompiler = (e, sql) => {
  const c = 'column' in e ? sql.col(e.column) : '';
  const blind = (failed: string) => ({ level: 'row' as const, failed, isNull: 'FALSE' });
  switch (e.kind) {
    case 'between':
      return blind(`(NOT (${c} BETWEEN ${sql.param(e.min, 'numeric')} AND ${sql.param(e.max, 'numeric')}))`);
    case 'regex':
      return blind(qualityDialect(sql.dialect.name).regexNoMatch(c, sql.param(e.pattern, 'text')));
    case 'in_set':
      return blind(`(${c} NOT IN (${e.values.map((v) => sql.param(v, 'text')).join(', ')}))`);
    case 'references':
      return blind(`(${c} NOT IN (SELECT r.${sql.dialect.ident(e.key)} FROM ${sql.table(e.table)} AS r))`);
    default:
      return compileExpectation(e, sql);
  }
};

/** Completeness as count(*) / count(*): count(*) counts the rows whose value is NULL too, so the ratio is always 1. */
const countStarCompile: ExpectationCompiler = (e, sql) => {
  if (e.kind !== 'completeness') return compileExpectation(e, sql);
  const wrong = compileExpectation(e, sql);
  if (wrong.level !== 'batch') return wrong;
  return { ...wrong, aggregates: { present: 'count(*)', rows: 'count(*)' } };
};

/**
 * Promote in one transaction, then quarantine and record in a second: a crash between the two
 * leaves the clean rows in silver with no quarantine and no result record — the bad rows are
 * nowhere, and a job that reruns "batches without a record" may promote again.
 */
export const twoTransactions: GateWriter = async (db, statements) => {
  await db.transaction(async (tx) => {
    for (const s of statements.filter((s) => s.part === 'promote')) await tx.exec(s.sql, s.params);
  });
  await db.transaction(async (tx) => {
    for (const s of statements.filter((s) => s.part !== 'promote')) await tx.exec(s.sql, s.params);
  });
};

export const qualityPitfalls: Pitfall<QualityImpl>[] = [
  {
    name: 'not-between-lets-nulls-through',
    title: 'checks values with NOT (x BETWEEN …) / x !~ regex / NOT IN, with no NULL outcome',
    description:
      'The failing-row predicate is the negated condition. For a NULL amount or email it is NULL, not TRUE: the row is counted as passing ' +
      'and promoted, so a required column reaches silver empty, and stray NULLs are never reported.',
    impl: { ...referenceImpl, compile: nullBlindCompile },
  },
  {
    name: 'completeness-count-star',
    title: 'measures completeness with count(*) instead of count(col)',
    description:
      'count(*) / count(*) is 1 whatever the column holds: a batch with a quarter of its amounts NULL passes the completeness gate and is promoted.',
    impl: { ...referenceImpl, compile: countStarCompile },
  },
  {
    name: 'promote-and-quarantine-in-two-transactions',
    title: 'promotes the clean rows and writes the quarantine + record in two transactions',
    description:
      'Each write commits on its own. A crash after the promotion (shown with a failure injected before the second transaction\'s first statement) ' +
      'leaves silver with the clean rows, the quarantine empty and no result record: the batch\'s bad rows are lost until someone notices.',
    impl: { ...referenceImpl, write: twoTransactions },
  },
  {
    name: 'zscore-with-today-in-baseline',
    title: '3-σ z-score over a window that includes today\'s value',
    description:
      'The mean and σ are taken over the last four values including today. An outlier inflates its own σ: with four values |z| can never exceed 1.5, ' +
      'so the 3-σ rule never fires — neither on the 40 % drop nor on the doubled load.',
    impl: { ...referenceImpl, detector: zScoreDetector({ window: 4, threshold: 3, includeToday: true }) },
  },
  {
    name: 'fixed-ten-percent-rule',
    title: 'flags volume outside ±10 % of the 7-day average',
    description:
      'A weekly series swings far more than 10 % around its 7-day average: every Friday and weekend is an alarm, and the alerts that matter drown in them.',
    impl: { ...referenceImpl, detector: fixedBandDetector({ window: 7, band: 0.1 }) },
  },
];
