/**
 * Runs an incremental extractor through the seeded workload on real engines and collects the
 * evidence the claims judge: every transaction's timing, every extraction (the implementation's
 * and, beside it on its own target, the plain max(updated_at) extractor's), the source and the
 * targets row by row, a rerun and a replay, a SIGKILLed run, a backfill watched by a concurrent
 * reader, and hard deletes. No printing here (lab.ts shows the evidence).
 */
import { join } from 'node:path';
import type { Engines } from '../../pipelines/engines/index.ts';
import { makePortableTarget, openPortableTarget, type PortableTarget } from '../../pipelines/engines/portable.ts';
import { DuckDbEngine } from '../../pipelines/engines/duckdb/driver.ts';
import { PgEngine } from '../../pipelines/engines/postgres/driver.ts';
import type { SqlEngine, TargetEngineName } from '../../pipelines/engines/types.ts';
import {
  TARGET,
  backfillRange,
  bootExtractorProcess,
  createSourceTable,
  createTargetTables,
  extractIncremental,
  extractNaiveMax,
  fingerprint,
  hardDelete,
  inRange,
  moduleUrl,
  readState,
  restoreState,
  snapshotState,
  rowHashes,
  runWorkload,
  sourceAs,
  type BackfillFn,
  type BackfillPoint,
  type ExtractFn,
  type ExtractorSource,
  type ExtractRun,
  type TxTiming,
} from '../../pipelines/incremental/index.ts';
import type { Workload } from '../../fixtures/incremental.ts';

/** What a candidate provides: the scheduled run, where its code lives (for the crash test's child process), the backfill. */
export interface IncrementalImpl {
  extract: ExtractFn;
  source: ExtractorSource;
  backfill: BackfillFn;
}

export const referenceImpl: IncrementalImpl = {
  extract: extractIncremental,
  source: { module: moduleUrl, exportName: 'extractIncremental', kind: 'extract' },
  backfill: backfillRange,
};

export interface ExtractionRecord {
  run: number;
  /** Wall clock (epoch ms) when the run began and when both extractors were done (for the timeline chart). */
  at: number;
  done: number;
  impl: ExtractRun;
  /** The plain `updated_at > max(updated_at)` extractor at the same moment; `naive.from` is the max it read from. */
  naive: ExtractRun;
}

export interface SourceRowState {
  h: string;
  updatedAt: number;
  deleted: boolean;
}

type Fp = { rows: number; checksum: string };

export interface ScenarioEvidence {
  txs: TxTiming[];
  /** Key → the transaction whose write the source holds last. */
  lastWriter: Map<number, number>;
  extractions: ExtractionRecord[];
  /** After the workload and a final run (before the backfill and the hard deletes). */
  source: Map<number, SourceRowState>;
  target: Map<number, string[]>;
  naiveTarget: Map<number, string[]>;
  fingerprints: { source: Fp; target: Fp };
  reruns: { before: Fp; secondRun: Fp; replay: Fp };
  crash: { killed: boolean; signal: string | null; stateAfterCrash: string | null; crashedThenRerun: Fp; clean: Fp; missing: number[]; doubled: number[]; error?: string };
  backfill: {
    range: { from: string; to: string };
    /** R and the rest of the target just before the backfill's transaction (after the concurrent run), and a rebuild of R from the source. */
    oldR: Fp;
    outsideBefore: Fp;
    expectedR: Fp;
    afterR: Fp;
    outsideAfter: Fp;
    readerSaw: { point: BackfillPoint; fp: Fp }[];
    /** The row of R a scheduled run loaded while the backfill was between its source read and its commit. */
    concurrentId: number;
    concurrentRow: { target: string[]; source: string };
    attempts: number;
  };
  deletes: { softDeleted: number; softPropagated: number; hardDeleted: number[]; stillInTarget: number[] };
}

const byId = (rows: { id: number; h: string }[]) => {
  const m = new Map<number, string[]>();
  for (const r of rows) m.set(r.id, [...(m.get(r.id) ?? []), r.h]);
  return m;
};

/** A second connection to the same target database: the concurrent reader of the backfill. */
async function secondConnection(db: SqlEngine): Promise<SqlEngine> {
  if (db instanceof DuckDbEngine) return db.connect();
  if (db instanceof PgEngine) return PgEngine.connect(db.url);
  throw new Error(`no second connection for a ${db.name} target`);
}

/** A fresh, empty target another process can open (the crash test's extractor process). */
async function crashTarget(engines: Engines, engine: TargetEngineName, workDir: string): Promise<PortableTarget> {
  const loc = await makePortableTarget(engines, engine, workDir, 'incremental_crash');
  const db = await openPortableTarget(loc);
  try {
    await createTargetTables(db);
  } finally {
    await db.close();
  }
  return loc;
}

export interface ScenarioContext {
  engines: Engines;
  engine: TargetEngineName;
  workDir: string;
  /** Skip the SIGKILL part (the property test runs many seeds; the crash has its own test). */
  skipCrash?: boolean;
}

export async function runScenario(ctx: ScenarioContext, impl: IncrementalImpl, workload: Workload): Promise<ScenarioEvidence> {
  const { engines } = ctx;
  const srcUrl = await engines.freshPgDatabase('incremental_src');
  // Booted now, so its ~1 s of Node + tsx + drivers overlaps the workload.
  const child = ctx.skipCrash ? null : bootExtractorProcess((kill) => engines.onStop(kill));
  const admin = await engines.pg(srcUrl);
  await createSourceTable(admin);
  const writers: PgEngine[] = [];
  for (let w = 0; w < workload.writers; w++) {
    const db = await PgEngine.connect(srcUrl, { applicationName: `de-lab-writer-${w}` });
    engines.onStop(() => db.close());
    writers.push(db);
  }
  const extractor = await PgEngine.connect(srcUrl, { applicationName: 'de-lab-extractor' });
  engines.onStop(() => extractor.close());
  const target = await engines.target(ctx.engine, 'incremental');
  const naive = await engines.target(ctx.engine, 'incremental_naive');
  await createTargetTables(target);
  await createTargetTables(naive);

  const extractions: ExtractionRecord[] = [];
  // The state run 1 saved: restored later to replay every window since (a retry of old windows, all with data).
  let stateAfterFirst: Awaited<ReturnType<typeof snapshotState>> = [];
  const extractBoth = async (run: number) => {
    const at = Date.now();
    const i = await impl.extract(extractor, target);
    const n = await extractNaiveMax(extractor, naive);
    extractions.push({ run, at, done: Date.now(), impl: i, naive: n });
    if (extractions.length === 1) stateAfterFirst = await snapshotState(target);
  };
  const { txs, lastWriter } = await runWorkload(writers, workload, extractBoth);
  for (const w of writers) await w.close();
  await extractBoth(extractions.length + 1);

  // Row by row, after the final run.
  const srcHash = new Map((await rowHashes(admin, sourceAs('v1'))).map((r) => [r.id, r.h]));
  const srcMeta = await admin.query<{ id: unknown; updated_at: Date; deleted: boolean }>('SELECT id, updated_at, deleted FROM orders');
  const source = new Map(srcMeta.map((r) => [Number(r.id), { h: srcHash.get(Number(r.id))!, updatedAt: r.updated_at.getTime(), deleted: r.deleted }]));
  const target0 = byId(await rowHashes(target, TARGET.orders));
  const naive0 = byId(await rowHashes(naive, TARGET.orders));
  const fingerprints = { source: await fingerprint(admin, sourceAs('v1')), target: await fingerprint(target, TARGET.orders) };

  // Claim 4a: the next run with nothing new, and a replay of every window since run 1 (the state run 1 saved, restored).
  const before = await fingerprint(target, TARGET.orders);
  await impl.extract(extractor, target);
  const secondRun = await fingerprint(target, TARGET.orders);
  await restoreState(target, stateAfterFirst);
  await impl.extract(extractor, target);
  const replay = await fingerprint(target, TARGET.orders);

  // Claim 4b: an extractor process SIGKILLed after its MERGE, before its state is saved; then a rerun.
  const crash = await (async (): Promise<ScenarioEvidence['crash']> => {
    const cleanDb = await engines.target(ctx.engine, 'incremental_clean');
    await createTargetTables(cleanDb);
    await impl.extract(extractor, cleanDb);
    const clean = await fingerprint(cleanDb, TARGET.orders);
    const cleanRows = byId(await rowHashes(cleanDb, TARGET.orders));
    if (!child) {
      await cleanDb.close();
      return { killed: false, signal: null, stateAfterCrash: null, crashedThenRerun: clean, clean, missing: [], doubled: [], error: 'skipped' };
    }
    const loc = await crashTarget(engines, ctx.engine, ctx.workDir);
    const proc = await child.run({ source: impl.source, sourceUrl: srcUrl, target: loc, options: {}, crashAt: 'data-written' });
    const db = await openPortableTarget(loc);
    try {
      const stateAfterCrash = (await readState(db, 'orders')).watermark?.toISOString() ?? null;
      await impl.extract(extractor, db);
      const crashedThenRerun = await fingerprint(db, TARGET.orders);
      const rows = byId(await rowHashes(db, TARGET.orders));
      const missing = [...cleanRows.keys()].filter((id) => !rows.has(id)).sort((a, b) => a - b);
      const doubled = [...rows].filter(([, hs]) => hs.length > 1).map(([id]) => id).sort((a, b) => a - b);
      return { killed: proc.killed, signal: proc.exit.signal, stateAfterCrash, crashedThenRerun, clean, missing, doubled, ...(proc.error ? { error: proc.error } : {}) };
    } finally {
      await db.close();
      await cleanDb.close();
    }
  })();

  // Claim 5: backfill R with the fixed transform. Between its source read and its commit, a row
  // of R changes in the source and a scheduled run (already on the fixed transform) loads it; then
  // a second connection reads R after every step of the backfill's own transaction.
  const range = workload.backfill;
  const rangeParams = [range.from, range.to];
  const R = (db: SqlEngine, not = false) => `(SELECT * FROM ${db.dialect.ident(TARGET.orders)} WHERE ${not ? 'NOT ' : ''}${inRange(db)}) AS r`;
  const reader = await secondConnection(target);
  const readerSaw: { point: BackfillPoint; fp: Fp }[] = [];
  let beforeBackfill: { oldR: Fp; outsideBefore: Fp; expectedR: Fp; concurrentId: number } | undefined;
  let attempts = 0;
  try {
    ({ attempts } = await impl.backfill(extractor, target, {
      range,
      transform: 'v2',
      between: async (point) => {
        if (point !== 'read') return void readerSaw.push({ point, fp: await fingerprint(reader, R(reader), rangeParams) });
        if (beforeBackfill) return;
        const [row] = await admin.query<{ id: unknown }>(`SELECT id FROM orders WHERE ${inRange(admin)} AND NOT deleted ORDER BY id LIMIT 1`, rangeParams);
        const concurrentId = Number(row!.id);
        await admin.exec(`UPDATE orders SET amount = amount + 1, discount = discount + 0.5 WHERE id = $1`, [concurrentId]);
        await impl.extract(extractor, target, { transform: 'v2' });
        beforeBackfill = {
          oldR: await fingerprint(target, R(target), rangeParams),
          outsideBefore: await fingerprint(target, R(target, true), rangeParams),
          expectedR: await fingerprint(admin, sourceAs('v2', 'orders', inRange(admin)), rangeParams),
          concurrentId,
        };
      },
    }));
  } finally {
    await reader.close();
  }
  if (!beforeBackfill) throw new Error('the backfill never reported reading the source (between("read"))');
  const concurrentRow = {
    target: (await rowHashes(target, `(SELECT * FROM ${target.dialect.ident(TARGET.orders)} WHERE id = $1) AS x`, [beforeBackfill.concurrentId])).map((r) => r.h),
    source: (await rowHashes(admin, sourceAs('v2', 'orders', 'id = $1'), [beforeBackfill.concurrentId]))[0]?.h ?? '',
  };
  const backfill = { range, ...beforeBackfill, attempts, concurrentRow, afterR: await fingerprint(target, R(target), rangeParams), outsideAfter: await fingerprint(target, R(target, true), rangeParams), readerSaw };

  // Claim 6: soft deletes (from the row-by-row state above); hard deletes, then one more run.
  const softIds = [...source].filter(([, s]) => s.deleted).map(([id]) => id);
  const softPropagated = softIds.filter((id) => {
    const hs = target0.get(id);
    return hs?.length === 1 && hs[0] === source.get(id)!.h;
  }).length;
  await hardDelete(admin, workload.hardDeletes);
  await impl.extract(extractor, target, { transform: 'v2' });
  const srcIds = new Set((await admin.query<{ id: unknown }>('SELECT id FROM orders')).map((r) => Number(r.id)));
  const stillInTarget = [...new Set((await target.query<{ id: unknown }>(`SELECT id FROM ${target.dialect.ident(TARGET.orders)}`)).map((r) => Number(r.id)))].filter((id) => !srcIds.has(id)).sort((a, b) => a - b);

  // Done with the engines (a property test runs many scenarios on one engine set; `stopAll` would close them too).
  for (const db of [extractor, admin, target, naive]) await db.close();
  return {
    txs,
    lastWriter,
    extractions,
    source,
    target: target0,
    naiveTarget: naive0,
    fingerprints,
    reruns: { before, secondRun, replay },
    crash,
    backfill,
    deletes: { softDeleted: softIds.length, softPropagated, hardDeleted: [...workload.hardDeletes], stillInTarget },
  };
}
