/** The compaction lab's shared fixture: the click stream through Kafka into a small-file table, made once per engine set and stream. */
import { join } from 'node:path';
import type { LabContext, SharedFixture } from '../contract.ts';
import { clickStream, clickStreamSpec, type ClickEvent } from '../../fixtures/compaction.ts';
import {
  MicroBatchSink,
  createTopic,
  deleteTopic,
  partitionFingerprints,
  produceClickStream,
  readManifest,
  streamTopicToTable,
  readSnapshot,
  type Manifest,
  type SinkStats,
} from '../../pipelines/compaction/index.ts';
import type { DuckDbEngine } from '../../pipelines/engines/duckdb/driver.ts';
import { COMPACTION_DEFAULTS, type PartFp } from './scenario.ts';

/** The ingested table of one stream: what the shared fixture holds. */
export interface IngestedTable {
  dir: string;
  events: readonly ClickEvent[];
  manifest: Manifest;
  /** Per partition (rows, md5-based Dialect checksum): the lab's independent judge of "same data". */
  fingerprints: PartFp;
  /** Per partition (rows, DuckDB native-hash checksum): cheap enough for the many reads of the crash and fault checks. */
  snapshot: PartFp;
  produced: number;
  sink: SinkStats;
  ingestMs: number;
  /** performance.now() when the table was complete. */
  doneAt: number;
}

export interface Base extends IngestedTable {
  /** Made before this run asked for it (by an earlier run or the full run's warm-up). */
  reused: boolean;
}

export async function fingerprintsOf(db: DuckDbEngine, dir: string): Promise<PartFp> {
  return partitionFingerprints(db, dir, readManifest(dir).files);
}

/**
 * The ingested table of one stream (seed, and the spec the scale gives), made once per engine set:
 * the full run and its pitfall runs, or every check run of a test file, share it (each compactor
 * works on a hard-linked copy). It lives in the engine set's run dir, removed at `stopAll()`; its
 * topic is deleted once the table is written.
 */
export const ingestedBase: SharedFixture<IngestedTable> = {
  id: 'compaction-ingested-base',
  key: ({ seed, scale }) => {
    const spec = clickStreamSpec(scale);
    return `${seed}-${spec.events}-${spec.spanMs}-${spec.maxLateMs}`;
  },
  async make(params) {
    const { seed, scale, engines } = params;
    const events = clickStream(seed, clickStreamSpec(scale));
    const key = ingestedBase.key(params);
    const dir = join(engines.tempDir('compaction-base'), 'table');
    const db = await engines.duckdb();
    const t0 = performance.now();
    const { brokers } = await engines.kafka();
    const topic = engines.name(`compaction_events_${key}`);
    try {
      await createTopic(brokers, topic);
      const sink = new MicroBatchSink(dir, COMPACTION_DEFAULTS.triggerMs);
      // Producer and streaming sink run together: the sink writes early micro-batches while later events are still being sent.
      // A stop of the engines (an interrupt, say) ends the stream before Kafka goes.
      const stop = new AbortController();
      engines.onStop(async () => stop.abort());
      await Promise.all([
        produceClickStream(brokers, topic, events).catch((err: unknown) => (stop.abort(), Promise.reject(err))),
        streamTopicToTable(brokers, { topic, group: engines.name(`compaction_sink_${key}`) }, sink, events.length, { signal: stop.signal }),
      ]);
      const ingestMs = performance.now() - t0;
      const fingerprints = await fingerprintsOf(db, dir);
      const snapshot = (await readSnapshot(db, dir)).partitions;
      return { dir, events, manifest: readManifest(dir), fingerprints, snapshot, produced: events.length, sink: sink.stats, ingestMs, doneAt: performance.now() };
    } finally {
      await deleteTopic(brokers, topic);
    }
  },
};

/** Step 1: the shared table of this run's stream; reused when it was complete before the step asked. */
export async function ingest(ctx: LabContext): Promise<Base> {
  const asked = performance.now();
  const table = await ctx.shared(ingestedBase);
  return { ...table, reused: table.doneAt <= asked };
}

