/**
 * The claims of the incremental lab, as pure checks over one scenario's evidence. A failing check
 * names a row and the story of the transaction that wrote it: when it began (its now(), which
 * every row it wrote carries), when it committed, and which extraction it slipped past.
 */
import type { ClaimResult } from '../contract.ts';
import type { TxTiming } from '../../pipelines/incremental/source.ts';
import type { ScenarioEvidence } from './scenario.ts';

const hms = (t: number | Date) => new Date(t).toISOString().slice(11, 23);

function txOf(ev: ScenarioEvidence, id: number): TxTiming | undefined {
  const tx = ev.lastWriter.get(id);
  return tx === undefined ? undefined : ev.txs.find((t) => t.tx === tx);
}

/** "order 17 (updated_at 10:00:00.120): written by tx 5 (writer 0, long), began 10:00:00.120, committed 10:00:00.410 after extraction 2 (…)" */
export function rowStory(ev: ScenarioEvidence, id: number): string {
  const s = ev.source.get(id);
  const t = txOf(ev, id);
  const head = `order ${id}${s ? ` (updated_at ${hms(s.updatedAt)}${s.deleted ? ', soft-deleted' : ''})` : ''}`;
  if (!t) return head;
  const first = ev.extractions[t.extractionsAtCommit];
  const slipped =
    t.extractionsAtCommit > t.extractionsAtBegin
      ? `, open across extraction${t.extractionsAtCommit - t.extractionsAtBegin > 1 ? `s ${t.extractionsAtBegin + 1}–${t.extractionsAtCommit}` : ` ${t.extractionsAtCommit}`}`
      : '';
  const next = first ? `; the next extraction (${first.run}) ${first.naive.from ? `had a max(updated_at) of ${hms(new Date(first.naive.from))}` : 'had an empty target'}` : '';
  return `${head}: written by tx ${t.tx} (writer ${t.writer}, ${t.role}), began ${hms(t.began)}, committed ${hms(t.committed)}${slipped}${next}`;
}

interface Diff {
  lost: number[];
  doubled: number[];
  stale: number[];
  extra: number[];
}

/** Target rows vs the source's, by key and row hash. */
export function diffRows(source: ScenarioEvidence['source'], target: Map<number, string[]>): Diff {
  const d: Diff = { lost: [], doubled: [], stale: [], extra: [] };
  for (const [id, s] of source) {
    const hs = target.get(id);
    if (!hs) d.lost.push(id);
    else if (hs.length > 1) d.doubled.push(id);
    else if (hs[0] !== s.h) d.stale.push(id);
  }
  for (const id of target.keys()) if (!source.has(id)) d.extra.push(id);
  for (const list of Object.values(d)) list.sort((a: number, b: number) => a - b);
  return d;
}

/** Claim 1: after the workload and a final run, the target holds the source: every key once, with its content. */
export function nothingLostNothingDoubled(ev: ScenarioEvidence): ClaimResult {
  const d = diffRows(ev.source, ev.target);
  const same = ev.fingerprints.source.rows === ev.fingerprints.target.rows && ev.fingerprints.source.checksum === ev.fingerprints.target.checksum;
  const passed = same && d.lost.length + d.doubled.length + d.stale.length + d.extra.length === 0;
  const first = d.lost[0] !== undefined
    ? `lost ${rowStory(ev, d.lost[0])}`
    : d.doubled[0] !== undefined
      ? `the target holds ${rowStory(ev, d.doubled[0]).replace(/^order (\d+)/, `order $1 ${ev.target.get(d.doubled[0])!.length} times`)}`
      : d.stale[0] !== undefined
        ? `the target holds an old version of ${rowStory(ev, d.stale[0])}`
        : d.extra[0] !== undefined
          ? `the target holds order ${d.extra[0]}, which the source never had`
          : 'the fingerprints differ';
  return {
    passed,
    evidence: { source_rows: ev.fingerprints.source.rows, target_rows: ev.fingerprints.target.rows, lost: d.lost.length, doubled: d.doubled.length, stale: d.stale.length, fingerprints_equal: same },
    ...(passed ? {} : { counterexample: `${first} (${d.lost.length} lost, ${d.doubled.length} doubled, ${d.stale.length} stale)` }),
  };
}

/**
 * The rows the plain max(updated_at) extractor got wrong, each with the max it read from at the
 * first extraction after the row's commit: `late` when the row's timestamp is below that max,
 * `tie` when equal (a `>` skips both).
 */
export function naiveLosses(ev: ScenarioEvidence): { id: number; kind: 'late' | 'tie' | 'other' }[] {
  const d = diffRows(ev.source, ev.naiveTarget);
  return [...d.lost, ...d.stale].sort((a, b) => a - b).map((id) => {
    const t = txOf(ev, id);
    const from = t ? ev.extractions[t.extractionsAtCommit]?.naive.from : undefined;
    const u = ev.source.get(id)!.updatedAt;
    const max = from ? new Date(from).getTime() : undefined;
    return { id, kind: max === undefined ? 'other' : u < max ? 'late' : u === max ? 'tie' : 'other' };
  });
}

const wrongIn = (ev: ScenarioEvidence, id: number) => {
  const hs = ev.target.get(id);
  return !(hs?.length === 1 && hs[0] === ev.source.get(id)!.h);
};

/** Claim 2: the plain max(updated_at) extractor loses late commits (named), and the implementation loses none of them. */
export function lateCommits(ev: ScenarioEvidence): ClaimResult {
  const late = naiveLosses(ev).filter((l) => l.kind === 'late').map((l) => l.id);
  const missed = late.filter((id) => wrongIn(ev, id));
  const passed = late.length > 0 && missed.length === 0;
  return {
    passed,
    evidence: { lost_by_naive: late.length, lost_by_this_extractor: missed.length, long_transactions: ev.txs.filter((t) => t.role === 'long').length },
    ...(passed
      ? {}
      : { counterexample: late.length === 0 ? 'the workload had no commit later than a newer timestamp: nothing to judge' : `${missed.length} of the ${late.length} late rows are missing or stale here, e.g. ${rowStory(ev, missed[0]!)}` }),
  };
}

/** Claim 3: rows sharing the watermark's timestamp, committed after the extraction that read it, are kept. */
export function tiesKept(ev: ScenarioEvidence): ClaimResult {
  const tieTx = new Set(ev.txs.filter((t) => t.role === 'tie-late').map((t) => t.tx));
  const ties = [...ev.source.keys()].filter((id) => tieTx.has(ev.lastWriter.get(id) ?? -1)).sort((a, b) => a - b);
  const missed = ties.filter((id) => wrongIn(ev, id));
  const naiveTies = naiveLosses(ev).filter((l) => l.kind === 'tie').length;
  const passed = ties.length > 0 && missed.length === 0;
  return {
    passed,
    evidence: { tied_rows: ties.length, lost_by_naive: naiveTies, lost_by_this_extractor: missed.length },
    ...(passed ? {} : { counterexample: ties.length === 0 ? 'the workload had no tied transactions: nothing to judge' : `${missed.length} of ${ties.length} tied rows lost, e.g. ${rowStory(ev, missed[0]!)} — the same millisecond as its twin that committed before` }),
  };
}

const eq = (a: { rows: number; checksum: string }, b: { rows: number; checksum: string }) => a.rows === b.rows && a.checksum === b.checksum;

/** Claim 4: a second run, a replay of windows already loaded, and a run SIGKILLed after its MERGE then rerun all leave the target of one clean run. */
export function idempotentRerun(ev: ScenarioEvidence): ClaimResult {
  const { reruns: r, crash: c } = ev;
  const rerunOk = eq(r.before, r.secondRun) && eq(r.before, r.replay);
  const crashOk = c.killed && eq(c.crashedThenRerun, c.clean);
  const problems: string[] = [];
  if (!eq(r.before, r.secondRun)) problems.push(`a second run with nothing new took the target from ${r.before.rows} to ${r.secondRun.rows} rows`);
  if (!eq(r.secondRun, r.replay)) problems.push(`replaying every window since run 1 (the state run 1 saved, restored) took the target from ${r.secondRun.rows} to ${r.replay.rows} rows`);
  if (!c.killed) problems.push(`the extractor process was not killed at its checkpoint${c.error ? ` (${c.error})` : ''}`);
  else if (!crashOk)
    problems.push(
      `SIGKILLed after its MERGE (state left at ${c.stateAfterCrash ?? 'none'}) and rerun, the target has ${c.crashedThenRerun.rows} rows where one clean run has ${c.clean.rows}` +
        (c.missing.length ? `; missing orders ${c.missing.slice(0, 5).join(', ')}${c.missing.length > 5 ? ', …' : ''} (${c.missing.length})` : '') +
        (c.doubled.length ? `; doubled orders ${c.doubled.slice(0, 5).join(', ')} (${c.doubled.length})` : ''),
    );
  return {
    passed: rerunOk && crashOk,
    evidence: { rerun_rows_added: r.secondRun.rows - r.before.rows, replay_rows_added: r.replay.rows - r.secondRun.rows, killed: c.killed, crash_rows_missing: c.missing.length, crash_rows_doubled: c.doubled.length },
    ...(problems.length ? { counterexample: problems.join('; ') } : {}),
  };
}

/** Claim 5: the backfill replaces exactly R with what a rebuild of R gives, a scheduled run in between included; a concurrent reader sees the old R or the new R. */
export function backfillExact(ev: ScenarioEvidence): ClaimResult {
  const b = ev.backfill;
  const mixed = b.readerSaw.filter((s) => !eq(s.fp, b.oldR) && !eq(s.fp, b.expectedR));
  const outsideSame = eq(b.outsideBefore, b.outsideAfter);
  const exact = eq(b.afterR, b.expectedR);
  const changed = !eq(b.oldR, b.expectedR);
  const passed = outsideSame && exact && mixed.length === 0 && changed && b.readerSaw.length > 0;
  const problems: string[] = [];
  if (!changed) problems.push('the fix changes nothing in R: nothing to judge');
  const concurrentOk = b.concurrentRow.target.length === 1 && b.concurrentRow.target[0] === b.concurrentRow.source;
  if (!concurrentOk) problems.push(`order ${b.concurrentId} changed in the source and a scheduled run loaded it after the backfill had read R; the backfill then wrote the copy it had read: the target holds an older version than the source`);
  else if (!exact) problems.push(`R after the backfill has ${b.afterR.rows} rows and differs from a rebuild of R (${b.expectedR.rows} rows)`);
  if (!outsideSame) problems.push(`rows outside R changed (${b.outsideBefore.rows} → ${b.outsideAfter.rows} rows)`);
  if (mixed[0]) problems.push(`a concurrent reader saw R with ${mixed[0].fp.rows} rows after the backfill's "${mixed[0].point}" step: neither the old R (${b.oldR.rows} rows) nor the new one (${b.expectedR.rows})`);
  if (b.readerSaw.length === 0) problems.push('the backfill never let the reader look: nothing to judge');
  return {
    passed,
    evidence: { range: `${b.range.from}..${b.range.to}`, rows_in_range: b.expectedR.rows, reader_reads: b.readerSaw.length, reader_saw_a_mix: mixed.length, outside_unchanged: outsideSame, range_exact: exact, concurrent_run_kept: concurrentOk, attempts: b.attempts },
    ...(problems.length ? { counterexample: problems.join('; ') } : {}),
  };
}

/** Claim 6: soft deletes propagate; hard deletes stay in the target — exactly the hard-deleted keys, counted. */
export function deletes(ev: ScenarioEvidence): ClaimResult {
  const d = ev.deletes;
  const hardSeen = d.stillInTarget.length === d.hardDeleted.length && d.stillInTarget.every((id, i) => id === d.hardDeleted[i]);
  const passed = d.softDeleted > 0 && d.softPropagated === d.softDeleted && hardSeen;
  const problems: string[] = [];
  if (d.softDeleted === 0) problems.push('the workload soft-deleted nothing: nothing to judge');
  if (d.softPropagated < d.softDeleted) problems.push(`${d.softDeleted - d.softPropagated} of ${d.softDeleted} soft deletes did not reach the target`);
  if (!hardSeen) problems.push(`keys in the target but not in the source: ${d.stillInTarget.join(', ') || 'none'}; hard-deleted: ${d.hardDeleted.join(', ')}`);
  return {
    passed,
    evidence: { soft_deleted: d.softDeleted, soft_propagated: d.softPropagated, hard_deleted: d.hardDeleted.length, hard_deletes_invisible: d.stillInTarget.filter((id) => d.hardDeleted.includes(id)).length },
    ...(problems.length ? { counterexample: problems.join('; ') } : {}),
  };
}
