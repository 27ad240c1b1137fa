import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GroupSupervisor, consumerSessionTimeout, createTopics, kafkaClient, startApply, waitGroupDrained } from '../pipelines/cdc/index.ts';
import { cdcLab } from '../labs/cdc/lab.ts';
import { runLab } from '../labs/runner.ts';
import { Reporter } from '../labs/reporter.ts';
import type { LabReport } from '../labs/contract.ts';
import { running, testEngines } from './helpers.ts';
import fc from 'fast-check';
import { DuckDbEngine } from '../pipelines/engines/duckdb/driver.ts';
import { TargetSchema, applyBatch } from '../pipelines/cdc/apply.ts';
import type { ChangeEvent, TableSchema } from '../pipelines/cdc/envelope.ts';

const engines = testEngines();
afterAll(() => engines.stopAll());

const claim = (r: LabReport, id: string) => r.claims.find((c) => c.id === id)!;

describe('lab cdc (Postgres pgoutput → Kafka → MERGE, capture and apply as separate processes)', () => {
  let report: LabReport;

  it('runs the reference on DuckDB: all seven claims hold, with crashes by real SIGKILL', async () => {
    report = await runLab(cdcLab, { seed: 11, scale: 0.3, provision: 'external', out: Reporter.silent(), engines });
    for (const c of report.claims) expect(c, `${c.id}: ${c.counterexample ?? ''}`).toMatchObject({ passed: true });
  }, 300_000);

  it('convergence: full NULL-safe compare finds no missing, extra, differing or duplicated row', () => {
    expect(claim(report, 'convergence').evidence).toMatchObject({ missing: 0, extra: 0, differing: 0, duplicated: 0 });
    expect(Number(claim(report, 'convergence').evidence.source_rows)).toBeGreaterThan(100);
  });

  it('redelivery: replaying every topic from offset 0 applies nothing and leaves the target unchanged', () => {
    expect(claim(report, 'redelivery-harmless').evidence).toMatchObject({ events_applied_again: 0, target_unchanged: true });
  });

  it('crash safety: apply killed between commits and at random, capture killed between Kafka ack and slot ack', () => {
    const e = claim(report, 'crash-safety').evidence;
    expect(e).toMatchObject({ apply_kill_between_commits: true, apply_kill_random: true, capture_kill_after_kafka_ack: true });
    // The capture crash really re-published: Postgres re-sent what the slot had not confirmed.
    expect(Number(e.events_published_twice)).toBeGreaterThan(0);
  });

  it('ordering: keys changed several times with one ts_ms end in the source state', () => {
    const e = claim(report, 'ordering-by-lsn').evidence;
    expect(Number(e.keys_with_same_ts_changes)).toBeGreaterThan(0);
    expect(e.resolved_to_source_state).toBe(e.keys_with_same_ts_changes);
  });

  it('deletes propagate and every delete is followed by a tombstone', () => {
    const e = claim(report, 'deletes-propagate').evidence;
    expect(Number(e.delete_events)).toBeGreaterThan(0);
    expect(e).toMatchObject({ deletes_without_tombstone: 0, deleted_rows_still_in_target: 0 });
  });

  it('lag: consumer and slot lag sampled during the run, zero at the end', () => {
    const e = claim(report, 'lag-visible').evidence;
    expect(Number(e.samples)).toBeGreaterThan(1);
    expect(e).toMatchObject({ end_consumer_lag: 0, end_slot_lag_bytes: 0 });
  });

  it('schema change: the added column is in the target, NULL for older rows, without an apply restart', () => {
    const e = claim(report, 'schema-change').evidence;
    expect(e).toMatchObject({ target_has_column: true, apply_restarts: 0 });
    expect(e.null_rows_target).toBe(e.null_rows_source);
    expect(Number(e.rows_with_values)).toBeGreaterThan(0);
  });

  it('rejects every pitfall with the claim that names its defect, and a counterexample', () => {
    const by = Object.fromEntries(report.pitfalls.map((p) => [p.name, p]));
    expect(by['dedup-by-ts-ms']!.rejectedBy).toContain('ordering-by-lsn');
    expect(by['commit-offsets-first']!.rejectedBy).toContain('crash-safety');
    expect(by['insert-only-creates']!.rejectedBy).toContain('convergence');
    expect(by['append-changes']!.rejectedBy).toEqual(expect.arrayContaining(['convergence', 'redelivery-harmless', 'deletes-propagate']));
    for (const p of report.pitfalls) expect(p.counterexample, p.name).toBeTruthy();
  });

  it('reports the metrics named in the issue', () => {
    for (const m of ['cdc_events', 'cdc_e2e_events_per_s', 'cdc_p50_latency_ms', 'cdc_p99_latency_ms', 'cdc_raw_consume_events_per_s', 'cdc_e2e_over_raw']) {
      expect(report.metrics[m], m).toBeTypeOf('number');
    }
    expect(report.metrics.cdc_e2e_events_per_s).toBeGreaterThan(0);
  });

  it('runs on a Postgres replica (--engine postgres): the claims hold there too', async () => {
    const r = await runLab(cdcLab, { seed: 5, scale: 0.1, engine: 'postgres', provision: 'external', out: Reporter.silent(), engines, skipPitfalls: true });
    for (const c of r.claims) expect(c, `${c.id}: ${c.counterexample ?? ''}`).toMatchObject({ passed: true });
  }, 300_000);

  it('leaves no orphan: when the parent is SIGKILLed, its capture/apply child exits', async () => {
    // A parent that starts an apply process (it waits on Kafka forever) and prints its pid.
    const script = `
      import { startApply } from ${JSON.stringify(new URL('../pipelines/cdc/index.ts', import.meta.url).href)};
      const p = startApply({ brokers: ['127.0.0.1:1'], groupId: 'g', topics: ['t'], target: { engine: 'duckdb', path: ':memory:' },
        impl: { applyModule: ${JSON.stringify(new URL('../pipelines/cdc/apply.ts', import.meta.url).href)}, commitOffsets: 'after-target-commit' } });
      console.log(p.pid);
      setInterval(() => undefined, 1000);`;
    const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const childPid = await new Promise<number>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
    const alive = running;
    expect(alive(childPid)).toBe(true);
    parent.kill('SIGKILL');
    const deadline = Date.now() + 30000;
    while (alive(childPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(alive(childPid)).toBe(false);
  });

  it('the supervisor evicts a group member at once (LeaveGroup on its behalf): the broker drops it, an unknown member is refused', async () => {
    const { brokers } = await engines.kafka();
    const kafka = kafkaClient(brokers);
    const admin = kafka.admin();
    await admin.connect();
    const topic = engines.name(`evict_${Date.now()}`);
    const groupId = `${topic}_g`;
    await createTopics(admin, [topic], 1);
    // A member with a long session: without the eviction the broker would keep it for 30 s after it died.
    const consumer = kafka.consumer({ groupId, sessionTimeout: 30000, heartbeatInterval: 10000, maxWaitTimeInMs: 100 });
    const sup = new GroupSupervisor(brokers);
    try {
      const joined = new Promise<string>((resolve) => consumer.on(consumer.events.GROUP_JOIN, (e) => resolve(e.payload.memberId)));
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({ eachMessage: async () => undefined });
      const memberId = await joined;
      const members = async () => (await admin.describeGroups([groupId])).groups[0]!.members.map((m) => m.memberId);
      expect(await members()).toEqual([memberId]);
      expect(await sup.evict(groupId, memberId)).toBe(true);
      expect(await members()).not.toContain(memberId);
      expect(await sup.evict(groupId, 'no-such-member')).toBe(false);
    } finally {
      await consumer.disconnect();
      await sup.close();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });

  it('a batch that applies for longer than the consumer session keeps its partitions: heartbeats while it applies, no rejoin, applied once', async () => {
    const { brokers } = await engines.kafka();
    const admin = kafkaClient(brokers).admin();
    await admin.connect();
    const topic = engines.name(`slow_${Date.now()}`);
    const groupId = engines.name(`slow_g_${Date.now()}`);
    const dir = mkdtempSync(join(tmpdir(), 'de-lab-cdc-slow-'));
    try {
      await createTopics(admin, [topic], 1);
      const table: TableSchema = { name: 't', key: ['id'], columns: [{ name: 'id', type: 'int' }, { name: 'v', type: 'int' }] };
      const events: ChangeEvent[] = [1, 2, 3].map((id) => ({
        op: 'c',
        before: null,
        after: { id, v: id * 10 },
        ts_ms: 1,
        source: { lsn: String(100 + id), commit_lsn: '200', txId: 1, table: 'public.t', ts_ms: 1, snapshot: false },
        schema: table,
      }));
      const producer = kafkaClient(brokers).producer();
      await producer.connect();
      await producer.send({ topic, messages: events.map((e) => ({ key: JSON.stringify({ id: e.after!.id }), value: JSON.stringify(e) })) });
      await producer.disconnect();
      // The shortest session the broker allows; each batch takes three of them to apply.
      const sessionTimeout = await consumerSessionTimeout(admin);
      const job = startApply({
        brokers,
        groupId,
        topics: [topic],
        target: { engine: 'duckdb', path: join(dir, 'target.duckdb') },
        impl: { applyModule: `${new URL('./cdc-fixture/slow-apply.ts', import.meta.url).href}?ms=${3 * sessionTimeout}`, commitOffsets: 'after-target-commit' },
        sessionTimeout,
      });
      try {
        const failed = () => {
          const f = job.messages.find((m) => m.ev === 'failed');
          return f ? String(f.error) : null;
        };
        await waitGroupDrained(admin, groupId, [topic], 60_000, failed);
      } finally {
        await job.stop();
      }
      expect(job.messages.filter((m) => m.ev === 'rejoin')).toEqual([]);
      const batches = job.messages.filter((m) => m.ev === 'batch');
      expect(batches.reduce((n, m) => n + Number(m.fresh), 0)).toBe(3);
      const db = await DuckDbEngine.open(join(dir, 'target.duckdb'));
      try {
        expect(await db.query('SELECT id, v FROM t ORDER BY id')).toEqual([
          { id: 1, v: 10 },
          { id: 2, v: 20 },
          { id: 3, v: 30 },
        ]);
      } finally {
        await db.close();
      }
    } finally {
      await admin.deleteGroups([groupId]).catch(() => undefined);
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('applyBatch, for all seeded change sequences, batchings and redeliveries: the target ends equal to the source', async () => {
    const table: TableSchema = { name: 't', key: ['id'], columns: [{ name: 'id', type: 'int' }, { name: 'v', type: 'int' }] };
    // A source history: transactions of ops on keys 1..4; each change gets (commit_lsn, lsn) like pgoutput gives.
    const op = fc.record({ key: fc.integer({ min: 1, max: 4 }), kind: fc.constantFrom('upsert', 'upsert', 'delete'), v: fc.integer({ min: 0, max: 9 }) });
    const history = fc.array(fc.array(op, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 12 });
    await fc.assert(
      fc.asyncProperty(history, fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 30, maxLength: 30 }), fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }), async (txns, cuts, replays) => {
        const state = new Map<number, number>();
        const events: ChangeEvent[] = [];
        let lsn = 1000;
        txns.forEach((txn, t) => {
          const commit = lsn + 100;
          for (const o of txn) {
            const had = state.has(o.key);
            if (o.kind === 'delete' && !had) continue;
            const before = had ? { id: o.key, v: state.get(o.key)! } : null;
            if (o.kind === 'delete') state.delete(o.key);
            else state.set(o.key, o.v);
            const after = o.kind === 'delete' ? null : { id: o.key, v: o.v };
            const ev: ChangeEvent = {
              op: o.kind === 'delete' ? 'd' : had ? 'u' : 'c',
              before,
              after,
              ts_ms: t,
              source: { lsn: String(lsn++), commit_lsn: String(commit), txId: t, table: 'public.t', ts_ms: t, snapshot: false },
              schema: table,
            };
            events.push(ev);
          }
          lsn = commit + 1;
        });
        const db = await DuckDbEngine.open(':memory:');
        try {
          const schema = new TargetSchema(db);
          await schema.ensureWatermarkTable();
          await schema.ensureTable(table);
          // Cut the stream into batches; after some batches, deliver the same batch again (a crash before the offset commit).
          let i = 0;
          let b = 0;
          while (i < events.length) {
            const batch = events.slice(i, i + cuts[b % cuts.length]!);
            await applyBatch(db, { topic: 'x', partition: 0, table, events: batch });
            if (replays[b % replays.length]) await applyBatch(db, { topic: 'x', partition: 0, table, events: events.slice(0, i + batch.length) });
            i += batch.length;
            b += 1;
          }
          const rows = await db.query<{ id: number; v: number }>('SELECT id, v FROM t ORDER BY id');
          expect(rows).toEqual([...state].sort((x, y) => x[0] - y[0]).map(([id, v]) => ({ id, v })));
        } finally {
          await db.close();
        }
      }),
      { numRuns: 25, seed: 4 },
    );
  });
});
