/**
 * The seven claims of the cdc lab, as pure checks over the evidence of one run (evidence.ts). A
 * claim whose step did not run fails with that as its counterexample (`requires`).
 */
import { requires, type Claim, type ClaimResult } from '../contract.ts';
import { SCHEMA_CHANGE } from '../../fixtures/cdc.ts';
import { APPLY_CRASH_POINT, CAPTURE_CRASH_POINT, diffIsEmpty, firstDifference } from '../../pipelines/cdc/index.ts';
import type { CdcState } from './evidence.ts';
import { TABLES } from './targets.ts';

/** A check over section `k` that may read the rest of the evidence too. */
const over =
  <K extends keyof CdcState>(k: K, check: (ev: NonNullable<CdcState[K]>, s: CdcState) => ClaimResult) =>
  (s: CdcState): ClaimResult =>
    requires<CdcState, K>(k, (ev) => check(ev, s))(s);

export const convergence = over('main', (main) => {
  const d = main.diff;
  const rows = d.reduce((n, x) => n + x.sourceRows, 0);
  return {
    passed: d.length === TABLES.length && d.every(diffIsEmpty) && rows > 0,
    evidence: {
      source_rows: rows,
      target_rows: d.reduce((n, x) => n + x.targetRows, 0),
      missing: d.reduce((n, x) => n + x.missing.length, 0),
      extra: d.reduce((n, x) => n + x.extra.length, 0),
      differing: d.reduce((n, x) => n + x.differing.length, 0),
      duplicated: d.reduce((n, x) => n + x.duplicated.length, 0),
    },
    counterexample: firstDifference(d),
  };
});

export const redeliveryHarmless = over('replay', (r) => {
  const same = r.fingerprintBefore === r.fingerprintAfter;
  return {
    passed: r.batches > 0 && r.fresh === 0 && same,
    evidence: { replayed_batches: r.batches, events_applied_again: r.fresh, target_unchanged: same },
    counterexample: !same ? `replaying ${r.batches} batches changed the target (fingerprint ${r.fingerprintBefore} → ${r.fingerprintAfter}); ${r.fresh} events were applied again` : undefined,
  };
});

export const crashSafety = over('crashBetweenCommits', (b, s) => {
  const c = s.crashRandom;
  // A replayed capture streams nothing while the applies run: no random kill, no capture crash.
  const live = s.setup?.live ?? false;
  const bOk = b.crashed.some((e) => e.crashPoint === APPLY_CRASH_POINT) && (b.diff ?? []).every(diffIsEmpty);
  const cOk = !live || (!!c && c.crashed.length > 0 && (c.diff ?? []).every(diffIsEmpty));
  const capCrashed = s.captureCrash?.ends.some((e) => e.crashPoint === CAPTURE_CRASH_POINT) ?? false;
  const capOk = !live || (capCrashed && (s.main?.diff ?? []).every(diffIsEmpty) && (s.main?.diff.length ?? 0) > 0);
  const counter = !bOk
    ? !b.crashed.some((e) => e.crashPoint === APPLY_CRASH_POINT)
      ? 'the apply process never reached its crash point'
      : `after SIGKILL between the two commits and a restart: ${firstDifference(b.diff ?? []) ?? 'no diff'}`
    : !cOk
      ? `after a SIGKILL at a random point (after ${c?.killedAfterBatches ?? '?'} batches) and a restart: ${firstDifference(c?.diff ?? []) ?? 'the process was never killed'}`
      : !capOk
        ? capCrashed
          ? `after the capture crash: ${firstDifference(s.main?.diff ?? [])}`
          : 'the capture process never reached its crash point'
        : undefined;
  return {
    passed: bOk && cOk && capOk,
    evidence: {
      apply_kill_between_commits: bOk,
      apply_kill_random: live ? (c ? cOk : null) : 'skipped',
      capture_kill_after_kafka_ack: live ? capOk : 'skipped',
      events_published_twice: live ? (s.captureCrash?.duplicatesPublished ?? null) : null,
    },
    counterexample: counter,
  };
});

export const orderingByLsn = over('audit', (a, s) => {
  const keys = a.sameTsKeys;
  const d = s.main?.diff ?? [];
  const bad = new Set([...d.flatMap((x) => x.differing.map((y) => y.key)), ...d.flatMap((x) => x.missing.map((m) => m.split(' ')[0]!)), ...d.flatMap((x) => x.duplicated.map((m) => m.split(' ')[0]!))]);
  const wrong = keys.filter((k) => bad.has(k));
  const example = wrong[0] ? d.flatMap((x) => x.differing).find((x) => x.key === wrong[0]) : undefined;
  return {
    passed: keys.length > 0 && wrong.length === 0 && d.length > 0,
    evidence: { keys_with_same_ts_changes: keys.length, resolved_to_source_state: keys.length - wrong.length },
    counterexample: wrong[0]
      ? example
        ? `${wrong[0]} had several changes with one ts_ms; the target kept an earlier one: ${example.fields.join(', ')} (source → target)`
        : `${wrong[0]} had several changes with one ts_ms and is wrong in the target`
      : keys.length === 0
        ? 'no key had two changes with the same ts_ms: nothing tested'
        : undefined,
  };
});

export const deletesPropagate = over('audit', (a, s) => {
  const extra = (s.main?.diff ?? []).reduce((n, x) => n + x.extra.length, 0);
  const d = a.byOp.d ?? 0;
  return {
    passed: d > 0 && a.deletesWithoutTombstone === 0 && a.tombstones >= d && extra === 0 && !!s.main,
    evidence: { delete_events: d, tombstones: a.tombstones, deletes_without_tombstone: a.deletesWithoutTombstone, deleted_rows_still_in_target: extra },
    counterexample: extra > 0 ? `${s.main?.diff.find((x) => x.extra.length)?.extra[0] ?? ''} was deleted at the source but is still in the target` : a.deletesWithoutTombstone ? `${a.deletesWithoutTombstone} deletes have no tombstone` : undefined,
  };
});

export const lagVisible = over('lagEnd', (end, s) => {
  const during = s.lag.slice(0, -1);
  return {
    passed: during.length >= 2 && end.consumerLag === 0 && end.slotBehindBytes === 0,
    evidence: {
      samples: during.length,
      max_consumer_lag: during.length ? Math.max(...during.map((x) => x.consumerLag)) : null,
      max_slot_lag_bytes: during.length ? Math.max(...during.map((x) => x.slotLagBytes)) : null,
      end_consumer_lag: end.consumerLag,
      end_slot_lag_bytes: end.slotBehindBytes,
    },
    counterexample: end.consumerLag !== 0 ? `consumer lag ${end.consumerLag} at the end` : end.slotBehindBytes !== 0 ? `slot ${end.slotBehindBytes} bytes behind at the end` : undefined,
  };
});

export const schemaChange = over('schema', (x, s) => {
  const colDiff = (s.main?.diff ?? []).find((d) => d.table === 'customers');
  return {
    passed: x.targetHasColumn && x.targetNulls === x.sourceNulls && x.sourceNulls > 0 && x.sourceValues > 0 && x.applyRestartsBefore === 0 && !!colDiff && diffIsEmpty(colDiff),
    evidence: { target_has_column: x.targetHasColumn, null_rows_source: x.sourceNulls, null_rows_target: x.targetNulls, rows_with_values: x.sourceValues, apply_restarts: x.applyRestartsBefore },
    counterexample: !x.targetHasColumn ? `target customers has no ${SCHEMA_CHANGE.column}` : colDiff && !diffIsEmpty(colDiff) ? firstDifference([colDiff]) : undefined,
  };
});

export const cdcClaims: readonly Claim<CdcState>[] = [
  {
    id: 'convergence',
    title: 'Target converges to the source',
    statement:
      'After a seeded workload (inserts, updates, deletes, a deleted key re-inserted, many updates of one row in one transaction and across batches, multi-row transactions), the target equals the source: full NULL-safe compare of every row and column.',
    check: convergence,
  },
  {
    id: 'redelivery-harmless',
    title: 'Replaying the topic changes nothing',
    statement: 'Replaying every topic from offset 0 into the converged target applies nothing: every event is at or below the applied watermark, and the target is byte-for-byte the same.',
    check: redeliveryHarmless,
  },
  {
    id: 'crash-safety',
    title: 'Crashes lose nothing and double nothing',
    statement:
      'SIGKILL of the apply process between the target commit and the offset commit, SIGKILL at a random point, and SIGKILL of the capture process between the Kafka ack and the slot ack: after restarts the target still equals the source.',
    check: crashSafety,
  },
  {
    id: 'ordering-by-lsn',
    title: 'Same-ts_ms changes resolve by LSN',
    statement: 'Rows changed several times with the same ts_ms (one transaction) end in the source’s final state: the apply orders by LSN, not by time.',
    check: orderingByLsn,
  },
  {
    id: 'deletes-propagate',
    title: 'Deletes propagate, tombstones follow',
    statement: 'Rows deleted at the source are gone from the target, and in the topic every delete event is followed by a tombstone for its key.',
    check: deletesPropagate,
  },
  {
    id: 'lag-visible',
    title: 'Lag is visible, and zero at the end',
    statement: 'Consumer-group lag (messages) and replication-slot lag (WAL bytes) are sampled during the run, and both are zero once the pipeline has caught up.',
    check: lagVisible,
  },
  {
    id: 'schema-change',
    title: 'Added column arrives, nullable',
    statement: 'A column added at the source while the pipeline runs appears in the target (nullable, older rows NULL, newer rows with their values) without restarting the apply process.',
    check: schemaChange,
  },
];
