/**
 * The claims of the quality lab, as pure checks over the evidence of one scenario run. The ground
 * truth is the fixture's (which incident each day carries, how many bad rows and NULLs it has);
 * the table counts are read back from the engine — never the gate's own account of itself.
 */
import type { ClaimResult } from '../contract.ts';
import { NAIVE_RULES, VOLUME_ANOMALY } from '../../pipelines/quality/index.ts';
import { reportedOn, type DayOutcome, type ScenarioEvidence } from './scenario.ts';

const day = (d: DayOutcome) => `${d.date} (${d.incident ?? 'clean'})`;
const list = (xs: readonly string[]) => (xs.length ? xs.join(', ') : 'nothing');
const fail = (evidence: ClaimResult['evidence'], problems: string[]): ClaimResult => ({
  passed: problems.length === 0,
  evidence,
  ...(problems.length ? { counterexample: problems[0] + (problems.length > 1 ? ` (+${problems.length - 1} more)` : '') } : {}),
});

/** A batch is held in bronze (blocked): all its rows are accounted for there. */
const blocked = (d: DayOutcome) => d.tables.record?.status === 'blocked';

/** Claim 1: promoted + quarantined (+ held, for a blocked batch) = bronze; reasons on every quarantined row; reruns and crashes change nothing. */
export function nothingLost(ev: ScenarioEvidence): ClaimResult {
  const problems: string[] = [];
  let bronze = 0;
  let promoted = 0;
  let quarantined = 0;
  let held = 0;
  for (const d of ev.days) {
    const t = d.tables;
    bronze += t.bronze;
    promoted += t.silver;
    quarantined += t.quarantine;
    if (!t.record) {
      problems.push(`${day(d)}: no result record for the batch`);
      continue;
    }
    if (blocked(d)) {
      held += t.bronze;
      if (t.silver + t.quarantine > 0) problems.push(`${day(d)}: blocked, yet ${t.silver} rows in silver and ${t.quarantine} in quarantine`);
    } else if (t.silver + t.quarantine !== t.bronze) {
      problems.push(`${day(d)}: bronze has ${t.bronze} rows, silver ${t.silver} + quarantine ${t.quarantine} = ${t.silver + t.quarantine}: ${t.bronze - t.silver - t.quarantine} rows ${t.silver + t.quarantine < t.bronze ? 'lost' : 'duplicated'}`);
    }
    if (t.record && !blocked(d) && (t.record.promoted !== t.silver || t.record.quarantined !== t.quarantine))
      problems.push(`${day(d)}: the result record says ${t.record.promoted} promoted / ${t.record.quarantined} quarantined, the tables hold ${t.silver} / ${t.quarantine}`);
    if (t.quarantineWithoutReason > 0) problems.push(`${day(d)}: ${t.quarantineWithoutReason} quarantined rows carry no reason`);
  }
  for (const c of ev.reruns.changed) problems.push(`rerunning the batch of ${c.date} changed ${c.table}: ${c.before} → ${c.after} (rows:checksum)`);
  const partial = ev.crash.points.filter((p) => p.silver + p.quarantine > 0 || p.record);
  for (const p of partial)
    problems.push(
      `the gate of ${ev.crash.date} failed after statement ${p.afterStatements}: silver holds ${p.silver} of its rows, quarantine ${p.quarantine}, ${p.record ? 'a' : 'no'} result record — ` +
        `${ev.crash.bronze - p.silver - p.quarantine} of its ${ev.crash.bronze} bronze rows are nowhere`,
    );
  if (ev.crash.points.length === 0) problems.push('the crash drill injected no failure: nothing to judge');
  return fail(
    {
      bronze_rows: bronze,
      promoted_rows: promoted,
      quarantined_rows: quarantined,
      held_in_bronze: held,
      reruns: ev.reruns.batches,
      reruns_that_changed_something: new Set(ev.reruns.changed.map((c) => c.date)).size,
      crash_points: ev.crash.points.length,
      crash_points_partial: partial.length,
    },
    problems,
  );
}

/** The day's truth says it must be blocked: an incident reported by a critical expectation. */
const mustBlock = (ev: ScenarioEvidence, d: DayOutcome) => d.truth.reports.some((r) => ev.severities[r] === 'critical');

/** Claim 2: a batch failing a critical expectation has no row in silver; every other batch is promoted. */
export function criticalBlocks(ev: ScenarioEvidence): ClaimResult {
  const problems: string[] = [];
  let mustBlockCount = 0;
  let blockedCount = 0;
  let leaked = 0;
  for (const d of ev.days) {
    if (blocked(d)) blockedCount++;
    if (mustBlock(ev, d)) {
      mustBlockCount++;
      if (d.tables.silver > 0 || !blocked(d)) {
        leaked += d.tables.silver;
        problems.push(`${day(d)} fails ${list(d.truth.reports.filter((r) => ev.severities[r] === 'critical'))} (critical), yet ${d.tables.silver} of its rows are in silver (status ${d.tables.record?.status ?? 'none'})`);
      }
    } else if (blocked(d)) {
      problems.push(`${day(d)} carries no critical incident, yet it was blocked by ${list(d.evaluation.blockedBy)}`);
    } else if (d.tables.bronze > 0 && d.tables.silver === 0) {
      problems.push(`${day(d)} was promoted, yet silver has none of its ${d.tables.bronze} rows`);
    }
  }
  return fail({ batches: ev.days.length, must_block: mustBlockCount, blocked: blockedCount, rows_leaked_to_silver: leaked }, problems);
}

export interface IncidentTally {
  missed: string[];
  falseAlarms: string[];
}

/** Per day: what should have reported and did not, what reported and should not have. */
export function incidentTally(ev: ScenarioEvidence): IncidentTally {
  const missed: string[] = [];
  const falseAlarms: string[] = [];
  for (const d of ev.days) {
    const got = new Set(reportedOn(d));
    for (const r of d.truth.reports) if (!got.has(r)) missed.push(`${day(d)}: ${r}`);
    for (const r of got) if (!d.truth.reports.includes(r)) falseAlarms.push(`${day(d)}: ${r}`);
  }
  return { missed, falseAlarms };
}

/** Claim 3: every incident reported by the expectation meant for it (with the exact bad-row count), nothing on a clean day. */
export function everyIncidentCaught(ev: ScenarioEvidence): ClaimResult {
  const { missed, falseAlarms } = incidentTally(ev);
  const problems = [
    ...missed.map((m) => `missed — ${m} did not report it`),
    ...falseAlarms.map((f) => `false alarm — ${f} reported, the day carries no such incident`),
  ];
  let wrongCounts = 0;
  for (const d of ev.days) {
    if (d.truth.badRows === 0 || blocked(d)) continue;
    const rowChecks = d.evaluation.results.filter((r) => r.level === 'row' && d.truth.reports.includes(r.name));
    for (const r of rowChecks) {
      if (r.failedRows !== d.truth.badRows) {
        wrongCounts++;
        problems.push(`${day(d)}: ${r.name} counted ${r.failedRows} failing rows, the batch has ${d.truth.badRows} bad rows`);
      }
    }
    if (d.tables.quarantine !== d.truth.badRows) {
      wrongCounts++;
      problems.push(`${day(d)}: ${d.tables.quarantine} rows quarantined, the batch has ${d.truth.badRows} bad rows`);
    }
  }
  const incidents = ev.days.filter((d) => d.incident).length;
  return fail(
    { incident_days: incidents, clean_days: ev.days.length - incidents, missed: missed.length, false_alarms: falseAlarms.length, wrong_bad_row_counts: wrongCounts },
    problems,
  );
}

/** Claim 4: NULLs are their own outcome — counted exactly, never let into silver; the NULL-blind predicate's count shown beside. */
export function nullAware(ev: ScenarioEvidence): ClaimResult {
  const problems: string[] = [];
  const byColumn: Record<string, keyof DayOutcome['truth']['nulls']> = { amount_between: 'amount', email_format: 'email', customer_exists: 'customer_id' };
  let nullRows = 0;
  let counted = 0;
  let letThrough = 0;
  let inSilver = 0;
  for (const d of ev.days) {
    letThrough += d.notBetweenLetsThrough;
    inSilver += d.tables.silverRequiredNulls;
    for (const [name, col] of Object.entries(byColumn)) {
      const r = d.evaluation.results.find((x) => x.name === name);
      const truth = d.truth.nulls[col];
      nullRows += truth;
      counted += r?.nullRows ?? 0;
      if (r && r.nullRows !== truth)
        problems.push(
          `${day(d)}: ${truth} row${truth === 1 ? ' has' : 's have'} ${col} NULL; ${name} counted ${r.nullRows ?? 0} NULL outcomes and ${r.failedRows ?? 0} failures` +
            (col === 'amount' ? ` — NOT (amount BETWEEN 0 AND 1000000) is NULL, not TRUE, for ${d.notBetweenLetsThrough} rows of this batch` : ''),
        );
    }
    if (d.tables.silverRequiredNulls > 0) problems.push(`${day(d)}: ${d.tables.silverRequiredNulls} silver rows have a NULL in a required column (amount, email or customer_id)`);
  }
  return fail({ null_values: nullRows, null_outcomes_counted: counted, not_between_lets_through: letThrough, required_nulls_in_silver: inSilver }, problems);
}

/** How a detector did over the judged days (after the warm-up). */
export function detectorTally(ev: ScenarioEvidence, verdictOf: (d: DayOutcome) => { flagged: boolean } | null): { falseAlarms: string[]; missed: string[]; judgedDays: number } {
  const falseAlarms: string[] = [];
  const missed: string[] = [];
  let judgedDays = 0;
  for (const d of ev.days) {
    if (d.day < ev.warmupDays) continue;
    const v = verdictOf(d);
    const want = d.truth.reports.includes(VOLUME_ANOMALY);
    if (v) judgedDays++;
    if (v?.flagged && !want) falseAlarms.push(day(d));
    if (want && !v?.flagged) missed.push(day(d));
  }
  return { falseAlarms, missed, judgedDays };
}

/** Claim 5: the volume check flags the drop and the doubled load and nothing else; the two common rules, on the same series, do not. */
export function anomalyFitsSeries(ev: ScenarioEvidence): ClaimResult {
  const mine = detectorTally(ev, (d) => d.anomaly);
  const evidence: ClaimResult['evidence'] = { judged_days: mine.judgedDays, false_alarms: mine.falseAlarms.length, missed: mine.missed.length };
  const naiveProblems: string[] = [];
  for (const name of Object.keys(NAIVE_RULES)) {
    const t = detectorTally(ev, (d) => d.naive?.[name] ?? null);
    evidence[`${name}_false_alarms`] = t.falseAlarms.length;
    evidence[`${name}_missed`] = t.missed.length;
    if (t.falseAlarms.length + t.missed.length === 0) naiveProblems.push(`the rule ${name} gets this series right too: it has no weekly pattern worth the name`);
  }
  const problems = [
    ...mine.missed.map((m) => `the volume check missed ${m}`),
    ...mine.falseAlarms.map((f) => `the volume check flagged ${f}, a normal day for its weekday`),
    ...naiveProblems,
  ];
  return fail(evidence, problems);
}
