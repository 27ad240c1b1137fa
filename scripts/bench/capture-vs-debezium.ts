/**
 * Our capture against real Debezium (PostgreSQL connector 3.6.1 on Kafka Connect 3.9.1), one after
 * the other, each alone on the machine, on the same source and the cdc lab's seeded workload
 * (pipelines/cdc/side-by-side.ts). Prints each one's rate, its time to first event, and
 * `cdc_capture_over_debezium` (ours over Debezium's, events/s; the target: ≥ 1.3), plus
 * whether the two streams agree (same rows, partitions, op sequences, values, LSNs).
 *
 *   node --import tsx scripts/bench/capture-vs-debezium.ts [changes=50000] [seed=42] [--json]
 */
import { Engines } from '../../pipelines/engines/index.ts';
import { CdcWorkload, SOURCE_TABLES } from '../../fixtures/cdc.ts';
import { createSourceTables, runWorkload } from '../../pipelines/cdc/source.ts';
import { compareCaptureStreams, runSideBySide } from '../../pipelines/cdc/side-by-side.ts';
import { errorLine } from '../../pipelines/errors.ts';

const args = process.argv.slice(2).filter((a) => a !== '--json');
const json = process.argv.includes('--json');
const changes = Number(args[0] ?? 50_000);
const seed = Number(args[1] ?? 42);
const log = (m: string) => process.stderr.write(`${m}\n`);

const engines = new Engines({ mode: 'auto', env: process.env, log });
try {
  const sourceUrl = await engines.freshPgDatabase('bench_dbz');
  const source = await engines.pg(sourceUrl);
  const workload = new CdcWorkload(seed);
  await createSourceTables(source, workload.initialRows(changes / 2000));
  const items = workload.phase(changes, { schemaChangeAt: 0.5 });
  const run = await runSideBySide({ engines, source, sourceUrl, tables: [...SOURCE_TABLES], workload: () => runWorkload(source, items).then(() => undefined), log });
  const d = compareCaptureStreams(run);
  const { ours, debezium } = run.timing;
  const metrics = {
    cdc_capture_events: ours.events,
    cdc_capture_events_per_s: ours.eventsPerS,
    cdc_debezium_events_per_s: debezium.eventsPerS,
    cdc_capture_first_event_ms: ours.firstEventMs,
    cdc_debezium_first_event_ms: debezium.firstEventMs,
    cdc_capture_over_debezium: debezium.eventsPerS > 0 ? Number((ours.eventsPerS / debezium.eventsPerS).toFixed(2)) : 0,
    streams_agree: d.keysOnlyIn.ours.length + d.keysOnlyIn.debezium.length + d.partitionMismatch.length + d.opSequenceMismatch.length + d.valueMismatch.length + d.positionMismatch.length === 0 ? 1 : 0,
  };
  if (json) process.stdout.write(`${JSON.stringify(metrics)}\n`);
  else for (const [k, v] of Object.entries(metrics)) console.log(`${k.padEnd(30)} ${v}`);
} catch (err) {
  process.stderr.write(`capture-vs-debezium: ${errorLine(err)}\n`);
  process.exitCode = 3;
} finally {
  await engines.stopAll();
}
