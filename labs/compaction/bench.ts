/** The compaction lab's benchmark steps (full runs only): reads before/after, throughput against a COPY floor, the trigger trade-off. Evidence only, no printing. */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { LabContext } from '../contract.ts';
import { parquetScan, pathLiteral, planMicroBatches, readManifest, type Compactor } from '../../pipelines/compaction/index.ts';
import { COMPACTION_DEFAULTS, fresh, options, type Base, type CompactionState, type MainEvidence } from './scenario.ts';

export const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Step 7: the same aggregate query over the base and the compacted table, alternating, after one warm-up each. */
export async function readBench(ctx: LabContext, base: Base, main: MainEvidence): Promise<NonNullable<CompactionState['bench']>> {
  const db = await ctx.engines.duckdb();
  const runs = await beforeAfter(timer((sql) => db.query(sql)), COMPACTION_DEFAULTS.query(parquetScan(base.dir, base.manifest.files)), COMPACTION_DEFAULTS.query(parquetScan(main.dir, readManifest(main.dir).files)), COMPACTION_DEFAULTS.benchRuns);
  return { ...runs, files: { before: base.manifest.files.length, after: readManifest(main.dir).files.length } };
}

/** A query's time and its rows as text (BigInts as digits), for comparing results. */
export const timer =
  (query: (sql: string) => Promise<unknown[]>) =>
  async (sql: string): Promise<{ ms: number; rows: string }> => {
    const t0 = performance.now();
    const rows = await query(sql);
    return { ms: performance.now() - t0, rows: JSON.stringify(rows, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) };
  };

/** The two queries alternately, `runs` times each, after one warm-up each whose results are compared. */
export async function beforeAfter(time: ReturnType<typeof timer>, qBefore: string, qAfter: string, runs: number): Promise<{ beforeMs: number[]; afterMs: number[]; resultsEqual: boolean }> {
  const warmB = await time(qBefore);
  const warmA = await time(qAfter);
  const beforeMs: number[] = [];
  const afterMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    beforeMs.push((await time(qBefore)).ms);
    afterMs.push((await time(qAfter)).ms);
  }
  return { beforeMs, afterMs, resultsEqual: warmA.rows === warmB.rows };
}

/** Step 8: compaction against a plain DuckDB COPY of the same rows (the floor), alternating runs. */
export async function throughput(ctx: LabContext, impl: Compactor, base: Base): Promise<NonNullable<CompactionState['throughput']>> {
  const db = await ctx.engines.duckdb();
  const mb = base.manifest.files.reduce((s, f) => s + f.bytes, 0) / 1e6;
  const out = join(ctx.workDir, `compaction-copy-floor-${ctx.mode}.parquet`);
  // At lab scale one compaction takes ~0.1 s: a single timing is mostly scheduler noise and
  // whichever job runs first pays the colder caches. Alternate the two, take each median.
  // Each job reads its own fresh (hard-linked) copy of the table: DuckDB caches the files it
  // has read by path (its external file cache), so a floor re-reading the base table's paths
  // would be served from that cache while every compaction reads never-read paths — a third
  // faster for the floor, for no work of its own.
  const compactMs: number[] = [];
  const copyMs: number[] = [];
  for (let i = 0; i < COMPACTION_DEFAULTS.throughputRuns; i++) {
    const dir = fresh(ctx, base, `throughput${i}`);
    const floorDir = fresh(ctx, base, `floor${i}`);
    const t0 = performance.now();
    await impl.compact(db, dir, options());
    compactMs.push(performance.now() - t0);
    const t1 = performance.now();
    await db.exec(`COPY (SELECT * EXCLUDE (dt, hour) FROM ${parquetScan(floorDir, base.manifest.files)} ORDER BY ts) TO ${pathLiteral(out)} (FORMAT parquet, COMPRESSION snappy)`);
    copyMs.push(performance.now() - t1);
    rmSync(out, { force: true });
    rmSync(dir, { recursive: true, force: true });
    rmSync(floorDir, { recursive: true, force: true });
  }
  return { mb, compactMs: median(compactMs), copyMs: median(copyMs), runs: { compactMs, copyMs } };
}

/** Step 9: files written and worst freshness of the same stream at each trigger interval. */
export function tradeoff(base: Base): NonNullable<CompactionState['tradeoff']> {
  const plans = COMPACTION_DEFAULTS.triggersS.map((s) => planMicroBatches(base.events, s * 1000));
  return { plans, plannedAtIngestTrigger: planMicroBatches(base.events, COMPACTION_DEFAULTS.triggerMs).files };
}
