import { afterAll, describe, expect, it } from 'vitest';
import { smokeLab } from '../labs/smoke/lab.ts';
import { runLab, checkImplementation } from '../labs/runner.ts';
import { Reporter } from '../labs/reporter.ts';
import { testEngines, testContext } from './helpers.ts';

const engines = testEngines();
afterAll(() => engines.stopAll());

describe('lab smoke', () => {
  it('proves all three engines: Parquet round trip, pgoutput slot sees I/U/D, Kafka group commits', async () => {
    const report = await runLab(smokeLab, { seed: 7, scale: 0.5, provision: 'external', out: Reporter.silent(), engines });
    for (const c of report.claims) expect(c, c.id).toMatchObject({ passed: true });
    expect(report.claims.find((c) => c.id === 'pg-logical-slot')!.evidence).toEqual({ inserts: 1, updates: 1, deletes: 1 });
    expect(report.pitfalls).toEqual([expect.objectContaining({ name: 'slot-after-writes', rejectedBy: ['pg-logical-slot'] })]);
  });

  it('pitfall slot-after-writes is rejected by the logical-slot claim with a counterexample', async () => {
    const ctx = testContext(engines);
    try {
      const { claims } = await checkImplementation(smokeLab, ctx, smokeLab.pitfalls[0]!.impl);
      const slot = claims.find((c) => c.id === 'pg-logical-slot')!;
      expect(slot.passed).toBe(false);
      expect(slot.evidence).toEqual({ inserts: 0, updates: 0, deletes: 0 });
      expect(slot.counterexample).toMatch(/0 messages/);
    } finally {
      ctx.cleanup();
    }
  });
});
