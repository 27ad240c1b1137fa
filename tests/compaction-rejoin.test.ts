/**
 * The compaction lab's streaming sink when its consumer loses the group: a batch that outlasts the
 * session. Its own file (its own process): run after the lab run in tests/compaction.test.ts, in
 * the same process, the dropped member never fetched again — not explained yet.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clickStream, clickStreamSpec } from '../fixtures/compaction.ts';
import { MicroBatchSink, createTopic, deleteTopic, planMicroBatches, produceClickStream, streamTopicToTable } from '../pipelines/compaction/index.ts';
import { DuckDbEngine } from '../pipelines/engines/duckdb/driver.ts';
import { testEngines } from './helpers.ts';

const engines = testEngines();
let work = '';
let db: DuckDbEngine;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'de-lab-compaction-rejoin-'));
  db = await DuckDbEngine.open();
});
afterAll(async () => {
  await db?.close();
  if (work) rmSync(work, { recursive: true, force: true });
  await engines.stopAll();
});

describe('the streaming sink through Kafka', () => {
  it('a batch that outlasts its group session (the member is dropped, the partition comes again from offset 0) still writes every event once', async () => {
    const { brokers } = await engines.kafka();
    const topic = engines.name('compaction_rejoin');
    const events = clickStream(11, clickStreamSpec(1));
    await createTopic(brokers, topic);
    try {
      await produceClickStream(brokers, topic, events);
      // Blocks the whole process (no heartbeat gets out) for longer than the 3 s session, once,
      // in the first fetched batch: the coordinator drops the member, which joins again and is
      // handed the partition from offset 0 (nothing committed).
      class StallingSink extends MicroBatchSink {
        stalled = false;
        override async add(e: Parameters<MicroBatchSink['add']>[0], next?: string): Promise<void> {
          if (!this.stalled && Number(next) === 1000) {
            this.stalled = true;
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 8000);
          }
          return super.add(e, next);
        }
      }
      const dir = join(work, 'rejoin');
      const sink = new StallingSink(dir, 60_000);
      const stats = await streamTopicToTable(brokers, { topic, group: engines.name('compaction_rejoin_sink') }, sink, events.length, { sessionTimeoutMs: 3000, timeoutMs: 150_000 });
      expect(sink.stalled).toBe(true);
      expect(stats.redelivered).toBeGreaterThan(0); // the group did hand the partition out again
      const plan = planMicroBatches(events, 60_000);
      expect({ rows: stats.rows, files: stats.filesWritten, batches: stats.batches }).toEqual({ rows: events.length, files: plan.files, batches: plan.batches });
      const rows = await db.query<{ n: number; ids: number }>(`SELECT count(*)::INT AS n, count(DISTINCT event_id)::INT AS ids FROM read_parquet('${dir}/**/*.parquet')`);
      expect(rows[0]).toEqual({ n: events.length, ids: events.length });
    } finally {
      await deleteTopic(brokers, topic);
    }
  }, 200_000);
});
