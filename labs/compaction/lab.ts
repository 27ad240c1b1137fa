import type { Lab } from '../contract.ts';
import { referenceCompactor, type Compactor } from '../../pipelines/compaction/index.ts';
import { COMPACTION_DEFAULTS, compactAgain, compactWhileReading, injectFaults, monitor, monitorOptions, type CompactionState } from './scenario.ts';
import { ingest, ingestedBase } from './ingest.ts';
import { crashAndRecover, startCrashProcess } from './crash.ts';
import { readBench, throughput, tradeoff } from './bench.ts';
import { atomic, crashSafe, fasterReads, fewerFiles, idempotent, MIN_FILE_RATIO, MIN_SPEEDUP, sameData, triggerTradeoff } from './claims.ts';
import { compactionPitfalls } from './pitfalls.ts';
import { DELTA_RUNS, compactAgainDelta, compactWhileReadingDelta, crashAndRecoverDelta, deltaBase, deltaOf, injectFaultsDelta, readBenchDelta, throughputDelta } from './delta.ts';
import { fileStatsByPartition } from '../../pipelines/compaction/index.ts';
import type { LabContext } from '../contract.ts';
import * as view from './view.ts';
import { compactionHints, compactionNudges } from './exercise/hints.ts';

export { COMPACTION_DEFAULTS, type CompactionState };

/** `--engine spark`: the table is a Delta Lake table, its compactor `Compactor.delta` (delta.ts). */
const onDelta = (ctx: LabContext) => ctx.engine === 'spark';

export const compactionLab: Lab<Compactor, CompactionState> = {
  id: 'compaction',
  title: 'Compaction: the small-file problem, and an atomic, crash-safe fix',
  question: 'Streaming writes create thousands of small files — how do you handle it?',
  needs: ['kafka'],
  engines: ['duckdb', 'spark'],
  reference: referenceCompactor,
  pitfalls: compactionPitfalls,
  claims: [
    {
      id: 'fewer-files',
      title: 'Fewer files, of the target size',
      statement: `Compaction cuts the file count at least ${MIN_FILE_RATIO}× at default data, and every new file is within 0.5×–1.5× of the target size except at most one per partition.`,
      check: fewerFiles,
    },
    {
      id: 'same-data',
      title: 'Same data, proven before commit',
      statement:
        'Per partition, row count and content checksum are identical before and after compaction; and a rewrite that drops a row or changes one value is refused before the commit (the table keeps its data).',
      check: sameData,
    },
    {
      id: 'faster-reads',
      title: `Reads ≥ ${MIN_SPEEDUP}× faster`,
      benchmark: true,
      statement: `The same aggregate query over the table runs at least ${MIN_SPEEDUP}× faster after compaction (median of several runs, same data).`,
      check: fasterReads,
    },
    {
      id: 'atomic',
      title: 'Atomic for readers',
      statement: 'A reader querying the table in a loop during compaction always sees the complete data: the same rows and checksum on every read, never missing or doubled rows.',
      check: atomic,
    },
    {
      id: 'crash-safe',
      title: 'Crash-safe (SIGKILL)',
      statement:
        'SIGKILL the compactor process after it has written some files: the table is still valid and unchanged; a re-run completes with the same data; vacuum removes the orphaned files.',
      check: crashSafe,
    },
    {
      id: 'idempotent',
      title: 'Idempotent',
      statement: 'Compacting a compacted table writes nothing: no new file, no new manifest version.',
      check: idempotent,
    },
    {
      id: 'trigger-tradeoff',
      title: 'Trigger trade-off',
      // Not a timing: it measures the ingest, which is the same for every compactor judged in check mode.
      benchmark: true,
      statement: 'A longer trigger interval writes fewer, larger files but makes data readable later: files fall and worst freshness grows with the interval; the sink wrote exactly the planned files.',
      check: triggerTradeoff,
    },
  ],
  newState: () => ({ faults: [] }),
  // Every step works on a hard-linked copy of the ingested table: one per stream serves every run.
  // A full run warms the check-scale one alongside its ingest, so the pitfalls' runs find it made.
  shared: [ingestedBase],
  // The compactor is what is judged: a tenth of the stream (2 400 events, ≈ 170 files in 3
  // partitions — the same small-file problem, ≥ 50× fewer files after compaction for every seed),
  // ingested once per engine set and shared by every check run.
  checkScale: (scale) => Math.min(scale, 0.1),
  steps: [
    {
      title: `Ingest: events → Kafka topic → streaming sink, trigger ${COMPACTION_DEFAULTS.triggerMs / 1000} s → dt=…/hour=… Parquet`,
      async run(ctx, impl, state) {
        if (onDelta(ctx)) {
          deltaOf(impl);
          state.base = await ingest(ctx);
          ctx.out.table(view.ingestTable(state.base));
          state.delta = await deltaBase(ctx, state.base);
          ctx.out.note(view.convertNote(state.delta));
          return;
        }
        // The crash step's child process boots (Node, loader, compactor module, DuckDB) meanwhile.
        state.crashProcess = startCrashProcess(ctx, impl);
        state.base = await ingest(ctx);
        ctx.out.table(view.ingestTable(state.base));
      },
    },
    {
      title: 'Monitor: files and sizes per partition (warning above the small-file threshold)',
      async run(ctx, _impl, state) {
        state.monitorBefore = monitor(state.base!);
        ctx.out.table(view.monitorBeforeTable(state.monitorBefore));
      },
    },
    {
      title: 'Compact, while a reader queries the table in a loop',
      async run(ctx, impl, state) {
        if (onDelta(ctx)) {
          state.main = await compactWhileReadingDelta(ctx, impl, state.base!, state.delta!);
          state.monitorAfter = fileStatsByPartition(state.main.after, monitorOptions);
        } else Object.assign(state, await compactWhileReading(ctx, impl, state.base!));
        ctx.out.table(view.monitorAfterTable(state.monitorAfter!));
        ctx.out.note(view.compactNote(state.main!));
      },
    },
    {
      title: 'Fault injection: a rewrite that drops a row, one that changes a value — must not be committed',
      async run(ctx, impl, state) {
        state.faults.push(...(onDelta(ctx) ? await injectFaultsDelta(ctx, impl, state.base!, state.delta!) : await injectFaults(ctx, impl, state.base!)));
        ctx.out.table(view.faultsTable(state.faults));
      },
    },
    {
      title: `Crash: SIGKILL mid-compaction (the compactor process at checkpoint ${COMPACTION_DEFAULTS.crashAtCheckpoint}; on Spark the driver, once files are written), check the table, re-run, vacuum`,
      async run(ctx, impl, state) {
        const booted = state.crashProcess;
        state.crashProcess = undefined;
        state.crash = onDelta(ctx) ? await crashAndRecoverDelta(ctx, impl, state.base!, state.delta!) : await crashAndRecover(ctx, impl, state.base!, booted);
        ctx.out.table(view.crashTable(state.crash));
        ctx.out.note(view.crashNote(state.crash));
      },
    },
    {
      title: 'Idempotence: compact the compacted table again',
      async run(ctx, impl, state) {
        state.idempotent = onDelta(ctx) ? await compactAgainDelta(ctx, impl, state.main!.dir) : await compactAgain(ctx, impl, state.main!.dir);
        ctx.out.table(view.idempotentTable(state.idempotent));
      },
    },
    {
      title: `Read benchmark: the same aggregate query before and after (median of ${COMPACTION_DEFAULTS.benchRuns}; ${DELTA_RUNS.bench} on Spark)`,
      benchmarkOnly: true,
      async run(ctx, _impl, state) {
        state.bench = onDelta(ctx) ? await readBenchDelta(ctx, state.delta!, state.main!) : await readBench(ctx, state.base!, state.main!);
        ctx.out.table(view.benchTable(state.bench));
      },
    },
    {
      title: `Throughput: compaction vs a plain copy of the same rows to Parquet (the floor: DuckDB COPY, or a Spark write), median of ${COMPACTION_DEFAULTS.throughputRuns} alternating runs (${DELTA_RUNS.throughput} on Spark)`,
      benchmarkOnly: true,
      async run(ctx, impl, state) {
        state.throughput = onDelta(ctx) ? await throughputDelta(ctx, impl, state.base!, state.delta!) : await throughput(ctx, impl, state.base!);
        ctx.out.table(view.throughputTable(state.throughput, onDelta(ctx)));
      },
    },
    {
      title: 'Trigger trade-off: files written vs freshness, same stream',
      benchmarkOnly: true,
      async run(ctx, _impl, state) {
        state.tradeoff = tradeoff(state.base!);
        ctx.out.table(view.tradeoffTable(state.tradeoff));
      },
    },
  ],
  metrics: view.compactionMetrics,
  charts: view.compactionCharts,
  persist: view.persistCompaction,
  exercise: {
    stub: 'labs/compaction/exercise/stub.ts',
    solution: 'pipelines/compaction/compact.ts',
    load(mod) {
      const compact = mod.compactTable;
      const module = mod.moduleUrl;
      if (typeof compact !== 'function') throw new Error('export compactTable is missing');
      if (typeof module !== 'string') throw new Error('export moduleUrl is missing (keep `export const moduleUrl = import.meta.url;`)');
      return { compact: compact as Compactor['compact'], source: { module, exportName: 'compactTable' } };
    },
    hints: compactionHints,
    nudges: compactionNudges,
  },
};
