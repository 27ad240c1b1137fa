/**
 * The six claims of the scd2 lab, as pure checks over the evidence of one scenario run. Each
 * failing check names the smallest story that shows the defect: one key, the snapshots up to the
 * failing date, and the versions the dimension holds for it.
 */
import type { ClaimResult } from '../contract.ts';
import { OPEN_END } from '../../pipelines/scd2/schema.ts';
import type { CustomerRow, KeyChange } from '../../fixtures/scd2.ts';
import type { DimRow, ScenarioEvidence } from './scenario.ts';
import { attrs, fmtVersion, keyStory, result, src, v, versionsOf, type Violation } from './story.ts';

/** Claim 1: the as-of-d query returns exactly the snapshot of d, for every loaded d. */
export function pointInTime(ev: ScenarioEvidence): ClaimResult {
  const got = new Map<string, typeof ev.asOf>();
  for (const r of ev.asOf) {
    const k = `${r.snapshot_date}|${r.customer_id}`;
    got.set(k, [...(got.get(k) ?? []), r]);
  }
  const vs: Violation[] = [];
  let expected = 0;
  for (const s of ev.snapshots) {
    const ids = new Set<number>();
    for (const row of s.rows) {
      expected++;
      ids.add(row.customer_id);
      const rows = got.get(`${s.date}|${row.customer_id}`) ?? [];
      if (rows.length === 0) vs.push({ date: s.date, id: row.customer_id, what: `the snapshot has customer ${row.customer_id} (${attrs(row)}); the as-of query returns no row` });
      else if (rows.length > 1) vs.push({ date: s.date, id: row.customer_id, what: `the as-of query returns ${rows.length} rows for customer ${row.customer_id}: ${rows.map((r) => `#${r.customer_sk} ${attrs(r)}`).join(' and ')}` });
      else if (rows[0]!.segment !== row.segment || rows[0]!.city !== row.city)
        vs.push({ date: s.date, id: row.customer_id, what: `the snapshot says ${attrs(row)}; the as-of query returns ${attrs(rows[0]!)}` });
    }
    for (const r of ev.asOf) {
      if (r.snapshot_date === s.date && !ids.has(r.customer_id))
        vs.push({ date: s.date, id: r.customer_id, what: `customer ${r.customer_id} is not in the snapshot; the as-of query returns #${r.customer_sk} ${attrs(r)}` });
    }
  }
  return result(ev, vs, { dates: ev.snapshots.length, snapshot_rows: expected, as_of_rows: ev.asOf.length, mismatches: vs.length });
}

/** Claim 2: one current row per live key, none for deleted keys; versions never overlap, no gaps. */
export function oneCurrentRow(ev: ScenarioEvidence): ClaimResult {
  const lastSnap = ev.snapshots[ev.snapshots.length - 1];
  const lastDate = lastSnap?.date ?? '';
  const live = new Set((lastSnap?.rows ?? []).map((r) => r.customer_id));
  const vs: Violation[] = [];
  let overlaps = 0;
  let gaps = 0;
  let currentProblems = 0;
  for (const [id, list] of versionsOf(ev)) {
    const current = list.filter((r) => r.is_current);
    if (live.has(id) && current.length !== 1) {
      currentProblems++;
      vs.push({ date: lastDate, id, what: `live customer ${id} has ${current.length} current rows` });
    }
    if (!live.has(id) && current.length > 0) {
      currentProblems++;
      vs.push({ date: lastDate, id, what: `customer ${id} is deleted but has a current row` });
    }
    for (const r of list) {
      if (!(r.valid_from < r.valid_to)) vs.push({ date: r.valid_from, id, what: `version #${r.customer_sk} has an empty window [${r.valid_from}, ${r.valid_to})` });
      if (r.is_current !== (r.valid_to === OPEN_END)) vs.push({ date: r.valid_from, id, what: `version #${r.customer_sk} has is_current=${r.is_current} but valid_to=${r.valid_to}` });
    }
    for (let i = 1; i < list.length; i++) {
      const a = list[i - 1]!;
      const b = list[i]!;
      if (b.valid_from < a.valid_to) {
        overlaps++;
        vs.push({ date: b.valid_from, id, what: `versions #${a.customer_sk} and #${b.customer_sk} overlap` });
      } else if (b.valid_from > a.valid_to && !a.is_deleted) {
        gaps++;
        vs.push({ date: a.valid_to, id, what: `a gap from ${a.valid_to} to ${b.valid_from} between #${a.customer_sk} and #${b.customer_sk} although the key was never deleted` });
      }
    }
  }
  const sks = new Set(ev.dim.map((r) => r.customer_sk));
  const dupSk = ev.dim.length - sks.size;
  if (dupSk > 0) {
    const seen = new Set<number>();
    const dup = ev.dim.find((r) => (seen.has(r.customer_sk) ? true : (seen.add(r.customer_sk), false)))!;
    vs.push({ date: dup.valid_from, id: dup.customer_id, what: `surrogate key ${dup.customer_sk} is used by more than one version` });
  }
  return result(ev, vs, { live_keys: live.size, current_rows: ev.dim.filter((r) => r.is_current).length, current_problems: currentProblems, overlaps, gaps, duplicate_sk: dupSk });
}

/** Claim 3: applying the same snapshot again changes nothing (row count and content hash). */
export function idempotent(ev: ScenarioEvidence): ClaimResult {
  const changed = ev.reruns.filter((r) => r.before.rows !== r.after.rows || r.before.hash !== r.after.hash);
  const first = changed[0];
  let counterexample: string | undefined;
  if (first) {
    // Name a key the re-run touched: a version that opened or closed on that day and is a duplicate or empty.
    const touched = ev.dim.filter((r) => r.valid_from === first.date || r.valid_to === first.date);
    const byKey = new Map<number, number>();
    for (const r of touched) byKey.set(r.customer_id, (byKey.get(r.customer_id) ?? 0) + 1);
    const id = [...byKey.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0];
    counterexample =
      `re-running the ${first.date} snapshot on the same day took the dimension from ${first.before.rows} to ${first.after.rows} rows` +
      (first.before.hash !== first.after.hash ? ' and changed its content hash' : '') +
      (id !== undefined ? `. ${keyStory(ev, id, first.date)}` : '');
  }
  return {
    passed: ev.reruns.length > 0 && changed.length === 0,
    evidence: { reruns: ev.reruns.length, reruns_that_changed_something: changed.length, rows_added_by_reruns: ev.reruns.reduce((n, r) => n + r.after.rows - r.before.rows, 0) },
    ...(counterexample ? { counterexample } : ev.reruns.length === 0 ? { counterexample: 'no snapshot was re-run: nothing to judge' } : {}),
  };
}

/** Versions opened per (key, date), and what the source did to that key that day. */
function opensAndChanges(ev: ScenarioEvidence): { opens: Map<string, number>; change: Map<string, KeyChange> } {
  const opens = new Map<string, number>();
  for (const r of ev.dim) opens.set(`${r.valid_from}|${r.customer_id}`, (opens.get(`${r.valid_from}|${r.customer_id}`) ?? 0) + 1);
  const change = new Map(ev.changes.map((c) => [`${c.date}|${c.customer_id}`, c]));
  return { opens, change };
}

/** Claim 4: an unchanged row (NULL = NULL included) never gets a new version. */
export function noSpuriousVersions(ev: ScenarioEvidence): ClaimResult {
  const { opens, change } = opensAndChanges(ev);
  const vs: Violation[] = [];
  let unchanged = 0;
  let unchangedWithNull = 0;
  for (const c of ev.changes) {
    if (c.kind !== 'unchanged') continue;
    unchanged++;
    const row = src(ev, c.date, c.customer_id)!;
    if (row.segment === null || row.city === null) unchangedWithNull++;
  }
  for (const [k, n] of opens) {
    const [date, idText] = k.split('|') as [string, string];
    const id = Number(idText);
    const kind = change.get(k)?.kind;
    if (n > 1) vs.push({ date, id, what: `${n} versions of customer ${id} open on the same day` });
    else if (kind === 'unchanged') vs.push({ date, id, what: `customer ${id} did not change, yet a version opened` });
  }
  return result(ev, vs, { unchanged_rows: unchanged, unchanged_with_null: unchangedWithNull, spurious_versions: vs.length });
}

/** The latest row the source gave each key, and its date (Type 1 must show its email on every version). */
function latestRows(ev: ScenarioEvidence): Map<number, { date: string; row: CustomerRow }> {
  const latest = new Map<number, { date: string; row: CustomerRow }>();
  for (const s of ev.snapshots) for (const r of s.rows) latest.set(r.customer_id, { date: s.date, row: r });
  return latest;
}

/** Claim 5: Type 1 edits create no version (and overwrite every version); Type 2 edits create one. */
export function type1VersusType2(ev: ScenarioEvidence): ClaimResult {
  const { opens } = opensAndChanges(ev);
  const vs: Violation[] = [];
  let t1 = 0;
  let t2 = 0;
  let t2Null = 0;
  let t1Versioned = 0;
  let t2Missed = 0;
  for (const c of ev.changes) {
    const n = opens.get(`${c.date}|${c.customer_id}`) ?? 0;
    if (c.kind === 'type1-only') {
      t1++;
      if (n > 0) {
        t1Versioned++;
        vs.push({ date: c.date, id: c.customer_id, what: `customer ${c.customer_id} changed only its Type 1 email, yet a version opened`, email: true });
      }
    }
    if (c.kind === 'type2') {
      t2++;
      const before = src(ev, ev.snapshots[ev.snapshots.findIndex((s) => s.date === c.date) - 1]!.date, c.customer_id)!;
      const after = src(ev, c.date, c.customer_id)!;
      if ((before.segment === null) !== (after.segment === null) || (before.city === null) !== (after.city === null)) t2Null++;
      if (n === 0) {
        t2Missed++;
        vs.push({ date: c.date, id: c.customer_id, what: `customer ${c.customer_id} went from ${attrs(before)} to ${attrs(after)}, yet no version opened` });
      }
    }
  }
  let staleEmails = 0;
  const latest = latestRows(ev);
  for (const r of ev.dim) {
    const last = latest.get(r.customer_id);
    const want = last?.row.email ?? null;
    if (r.email !== want) {
      staleEmails++;
      vs.push({ date: last?.date ?? r.valid_from, id: r.customer_id, what: `version #${r.customer_sk} still has email=${v(r.email)}, the latest Type 1 value is ${v(want)}`, email: true });
    }
  }
  return result(ev, vs, { type1_edits: t1, type1_versioned: t1Versioned, type2_edits: t2, type2_null_transitions: t2Null, type2_missed: t2Missed, stale_type1_values: staleEmails });
}

/** Claim 6: facts joined as of their date get exactly the version valid that day. */
export function factsJoinRightVersion(ev: ScenarioEvidence): ClaimResult {
  const byOrder = new Map<number, typeof ev.factJoin>();
  for (const r of ev.factJoin) byOrder.set(r.order_id, [...(byOrder.get(r.order_id) ?? []), r]);
  const vs: Violation[] = [];
  let joinedAmount = 0;
  for (const o of ev.orders) {
    const rows = (byOrder.get(o.order_id) ?? []).filter((r) => r.customer_sk !== null);
    joinedAmount += rows.length * o.amount;
    const was = src(ev, o.order_date, o.customer_id)!;
    const head = `order ${o.order_id} (customer ${o.customer_id}, amount ${o.amount})`;
    if (rows.length === 0) vs.push({ date: o.order_date, id: o.customer_id, what: `${head} joins no version` });
    else if (rows.length > 1) vs.push({ date: o.order_date, id: o.customer_id, what: `${head} joins ${rows.length} versions (${rows.map((r) => `#${r.customer_sk}`).join(', ')}): its amount is counted ${rows.length} times` });
    else if (rows[0]!.segment !== was.segment || rows[0]!.city !== was.city)
      vs.push({ date: o.order_date, id: o.customer_id, what: `${head} joins ${attrs(rows[0]!)}, the customer was ${attrs(was)} that day` });
  }
  const factAmount = ev.orders.reduce((n, o) => n + o.amount, 0);
  return result(ev, vs, { facts: ev.orders.length, fact_amount: factAmount, joined_amount: joinedAmount, wrong_joins: vs.length });
}

/** Claim 7: a failure anywhere in an apply leaves the dimension as it was (one transaction). */
export function atomicApply(ev: ScenarioEvidence): ClaimResult {
  const a = ev.atomicity;
  if (!a) return { passed: false, evidence: {}, counterexample: 'the atomicity probe did not run (no snapshot)' };
  const evidence = { date: a.date, failure_points: a.failurePoints, partial_applies: a.violation ? 1 : 0 };
  if (!a.violation) return { passed: a.failurePoints > 0, evidence, ...(a.failurePoints > 0 ? {} : { counterexample: 'the apply ran no statement through the engine handle' }) };
  const v = a.violation;
  const list = (rows: DimRow[]) => rows.map((r) => fmtVersion(r, false)).join(' · ') || 'none';
  return {
    passed: false,
    evidence,
    counterexample:
      `${a.date}: a failure injected after ${v.afterStatements} of the apply's statements left the dimension changed (${v.rowsBefore} → ${v.rowsAfter} rows) — ` +
      `customer ${v.customerId} had ${list(v.versionsBefore)}; after the failed apply ${list(v.versionsAfter)}. Readers saw half a load: ${
        a.statementAtomic ? 'this engine commits each statement on its own (Delta Lake), so the whole apply must be one statement — one MERGE.' : 'wrap the whole apply in db.transaction.'
      }`,
  };
}
