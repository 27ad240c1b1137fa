import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngines } from './helpers.ts';
import { cdcLab } from '../labs/cdc/lab.ts';
import { runLab } from '../labs/runner.ts';
import { Reporter } from '../labs/reporter.ts';
import type { LabReport } from '../labs/contract.ts';

/**
 * Issue 21: the whole cdc lab on real Debezium (PostgreSQL connector 3.6.1 on Kafka Connect 3.9.1)
 * as its capture — claims, the SIGKILL of the Connect worker, pitfalls, the capture ratio. Six
 * Connect worker starts: minutes of JVM on two cores, so it is not part of `npm test` (kept under
 * its 6 minutes) but its own run, `npm run test:debezium`, which CI runs after `npm test`.
 */
const engines = testEngines();
afterAll(() => engines.stopAll());

describe('the cdc lab with --capture debezium: its claims on real Debezium\'s stream, crash tests included', () => {
  let report: LabReport;
  const claim = (id: string) => report.claims.find((c) => c.id === id)!;

  beforeAll(async () => {
    report = await runLab(cdcLab, { seed: 11, scale: 0.1, provision: 'external', out: Reporter.silent(), engines, options: { capture: 'debezium' } });
  }, 600_000);

  it('every claim holds with Debezium as the capture', () => {
    for (const c of report.claims) expect(c, `${c.id}: ${c.counterexample ?? ''}`).toMatchObject({ passed: true });
  });

  it('crash safety: the Connect worker SIGKILLed after Kafka acked a write, restarted from its offsets file; Postgres re-sent what the slot had not confirmed', () => {
    const e = claim('crash-safety').evidence;
    expect(e).toMatchObject({ apply_kill_between_commits: true, apply_kill_random: true, capture_kill_after_kafka_ack: true });
    expect(Number(e.events_published_twice)).toBeGreaterThan(0);
    // Caught up by Debezium's own confirmation: its slot ends at the source's last position.
    expect(claim('lag-visible').evidence).toMatchObject({ end_consumer_lag: 0, end_slot_lag_bytes: 0 });
  });

  it('the pitfalls are rejected on Debezium\'s stream too, by the claims whose outcome depends on the capture (positions, redelivery, ops)', () => {
    const by = Object.fromEntries(report.pitfalls.map((p) => [p.name, p]));
    expect(by['dedup-by-ts-ms']!.rejectedBy).toContain('ordering-by-lsn');
    expect(by['commit-offsets-first']!.rejectedBy).toContain('crash-safety');
    expect(by['insert-only-creates']!.rejectedBy).toContain('convergence');
    expect(by['append-changes']!.rejectedBy).toEqual(expect.arrayContaining(['convergence', 'redelivery-harmless', 'deletes-propagate']));
  });

  it('reports cdc_capture_over_debezium: both captures timed on the same backlog in the same run', () => {
    expect(report.metrics.cdc_capture_over_debezium).toBeGreaterThan(0);
    expect(report.metrics.cdc_e2e_over_raw).toBeTypeOf('number');
    process.stderr.write(`[cdc-debezium] lab --capture debezium: cdc_capture_over_debezium ${report.metrics.cdc_capture_over_debezium}, ${report.durationMs} ms\n`);
  });
});
