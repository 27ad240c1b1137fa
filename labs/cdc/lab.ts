import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import type { ChartSpec, Lab, LabContext } from '../contract.ts';
import { Prng } from '../../fixtures/prng.ts';
import { CdcWorkload, CHANGES_PER_SCALE, KEY, SCHEMA_CHANGE, SOURCE_TABLES, type CdcTable, type WorkloadItem } from '../../fixtures/cdc.ts';
import type { PgEngine } from '../../pipelines/engines/postgres/driver.ts';
import type { SqlEngine, TargetEngineName } from '../../pipelines/engines/types.ts';
import {
  APPLY_CRASH_POINT,
  CAPTURE_CRASH_POINT,
  Restarting,
  WATERMARK_TABLE,
  auditTopics,
  compareTable,
  consumerLag,
  consumerSessionTimeout,
  createTopics,
  GroupSupervisor,
  diffIsEmpty,
  firstDifference,
  kafkaClient,
  keepCdcSpares,
  stopCdcSpares,
  openPortableTarget,
  makePortableTarget,
  sampleLag,
  slotBehind,
  startApply,
  startCapture,
  topicFor,
  waitCaughtUp,
  waitGroupDrained,
  type ApplyImpl,
  type PortableTarget,
  type LagSample,
  type ProcessEnd,
  type TableDiff,
  type TopicAudit,
} from '../../pipelines/cdc/index.ts';
import { createSourceTables, currentWalLsn, dropSlotAndPublication, runWorkload, type WorkloadRun } from '../../pipelines/cdc/source.ts';
import type { CaptureConfig } from '../../pipelines/cdc/capture.ts';
import { cdcPitfalls } from './pitfalls.ts';
import { InterruptedError } from '../../pipelines/errors.ts';
import { storedColumns } from '../../pipelines/engines/catalog.ts';

export type CdcImpl = ApplyImpl;

export const referenceImpl: CdcImpl = {
  applyModule: new URL('../../pipelines/cdc/apply.ts', import.meta.url).href,
  applyExport: 'applyBatch',
  commitOffsets: 'after-target-commit',
};


interface Batch {
  t: number;
  fresh: number;
  lat: number[];
}

interface ApplyRun {
  diff?: TableDiff[];
  crashed: ProcessEnd[];
  /** Events the apply found beyond its watermark (replay: must be 0). */
  fresh: number;
  batches: number;
  killedAfterBatches?: number;
  /** After each crash: ms from the death to the restarted consumer's group join (≈ the session timeout). */
  rejoinMs: number[];
  /** Target sessions of killed predecessors a restart aborted (Snowflake: their transactions stay open otherwise). */
  sessionsAborted: number;
}

interface State {
  names?: { slot: string; publication: string; topics: string[]; topicPrefix: string };
  dir?: string;
  brokers: string[];
  kafka?: Kafka;
  admin?: Admin;
  source?: PgEngine;
  targets: Record<string, PortableTarget>;
  /** Session timeout of the crash-test consumers (short: a killed one's partitions free up sooner). */
  sessionTimeout: number;
  captureConfig?: Omit<CaptureConfig, 'crash'>;
  lastEndLsn?: string;
  bench?: { changes: number; drainMs: number; workloadMs: number };
  /** --engine snowflake: whether the apply ran on the fakesnow emulator (its figures say nothing about Snowflake's speed). */
  sf?: { emulator: boolean };
  workload?: CdcWorkload;
  phase1Items?: WorkloadItem[];
  phase2Items?: WorkloadItem[];
  benchItems?: WorkloadItem[];
  /** The apply crash point's batch: the one carrying this change (an insert no later change touches). */
  sentinel?: { topic: string; key: string };
  snapshotRows: number;
  phase1?: WorkloadRun & { startedAt: number; caughtUpAt: number };
  phase2?: WorkloadRun;
  capture?: Restarting;
  applyA?: Restarting;
  aBatches: Batch[];
  sampler?: ReturnType<typeof sampleLag>;
  lag: LagSample[];
  lagEnd?: { consumerLag: number; slotBehindBytes: number };
  captureCrash?: { ends: ProcessEnd[]; duplicatesPublished: number };
  main?: { diff: TableDiff[]; rows: Record<string, Record<string, unknown>[]>; watermarks: Record<string, unknown>[]; fingerprint: string };
  schema?: { targetHasColumn: boolean; sourceNulls: number; targetNulls: number; sourceValues: number; applyRestartsBefore: number; applyPid: number | null };
  replay?: ApplyRun & { fingerprintBefore: string; fingerprintAfter: string };
  crashB?: ApplyHandle;
  crashC?: ApplyHandle;
  crashBetweenCommits?: ApplyRun;
  crashRandom?: ApplyRun;
  audit?: TopicAudit;
  cleanup?: () => Promise<void>;
  mode: 'full' | 'check';
  /** Per-candidate tag in consumer-group names. */
  runTag: string;
  /** Check mode: the topics captured once per run, replayed by this candidate. */
  shared?: SharedCapture;
  lagT0?: number;
  mainGroup?: string;
  /** Evicts the group members of killed apply processes (one Kafka connection per run). */
  supervisor?: GroupSupervisor;
}

/** The run's group supervisor, made on first use and closed with the engines. */
function supervisor(ctx: LabContext, s: State): GroupSupervisor {
  if (!s.supervisor) {
    const sup = (s.supervisor = new GroupSupervisor(s.brokers));
    ctx.engines.onStop(() => sup.close());
  }
  return s.supervisor;
}

const TABLES: CdcTable[] = ['customers', 'orders'];
const PARTITIONS = 2;

async function fingerprint(db: SqlEngine): Promise<string> {
  const h = createHash('sha256');
  for (const t of TABLES) {
    const rows = await db.query(`SELECT * FROM ${db.dialect.ident(t)}`);
    const lines = rows.map((r) => JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))).sort();
    h.update(`${t}\n${lines.join('\n')}\n`);
  }
  return h.digest('hex').slice(0, 16);
}

async function withTarget<T>(target: PortableTarget, fn: (db: SqlEngine) => Promise<T>): Promise<T> {
  const db = await openPortableTarget(target);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

async function compareAll(source: PgEngine, db: SqlEngine): Promise<TableDiff[]> {
  const out: TableDiff[] = [];
  for (const t of TABLES) out.push(await compareTable(source, db, t, [KEY[t]]));
  return out;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function phase1Latencies(s: State): number[] {
  const end = s.phase1?.caughtUpAt ?? Infinity;
  return s.aBatches.filter((b) => b.t <= end).flatMap((b) => b.lat).sort((a, b) => a - b);
}

const HIST_EDGES = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

interface ApplyHandle {
  label: string;
  target: PortableTarget;
  /** Set while paused for the throughput measurement: what happened before. */
  paused?: { ends: ProcessEnd[]; run: ApplyRun };
  groupId: string;
  proc: Restarting;
  run: ApplyRun;
  killTimer?: NodeJS.Timeout;
}

/**
 * The change the between-commits crash is armed on: the first insert of phase 1 of a key that no
 * other change, before or after, touches (a brand-new row, never updated or deleted). The batch
 * carrying it is the only one with that key, and losing it leaves that row missing for good — so a
 * lost batch always shows, whatever the batch boundaries were. The first such change, so the crash
 * and the restart (which waits out the killed consumer's session) overlap the rest of the stream.
 */
export function sentinelChange(phase: readonly WorkloadItem[], later: readonly WorkloadItem[], topicPrefix: string): { topic: string; key: string } {
  const changes = new Map<string, number>();
  for (const item of [...phase, ...later]) if (item.kind === 'txn') for (const o of item.ops) changes.set(`${o.table}:${o.key}`, (changes.get(`${o.table}:${o.key}`) ?? 0) + 1);
  for (const item of phase) {
    if (item.kind !== 'txn') continue;
    for (const o of item.ops) {
      // One change in all: an insert of a new key (a re-insert has its delete, an initial row is not inserted).
      if (o.kind === 'insert' && changes.get(`${o.table}:${o.key}`) === 1) return { topic: topicFor(topicPrefix, `public.${o.table}`), key: JSON.stringify({ [KEY[o.table]]: o.key }) };
    }
  }
  throw new Error('cdc: the workload has no insert that stays untouched (cannot arm the apply crash point)');
}

/** Starts one apply process (restarted after crashes) in its own consumer group. */
function launchApply(
  ctx: LabContext,
  s: State,
  impl: CdcImpl,
  opts: {
    label: string;
    target: PortableTarget;
    crash?: { afterEvents: number; key?: { topic: string; key: string } };
    killAfterMs?: number;
    sessionTimeout?: number;
    /** Target sessions of earlier processes of this apply (a resumed one's). */
    predecessors?: string[];
  },
): ApplyHandle {
  const groupId = groupName(ctx, s, opts.label);
  const run: ApplyRun = { crashed: [], fresh: 0, batches: 0, rejoinMs: [], sessionsAborted: 0 };
  // The supervisor evicts a dead process's group member before restarting it: the restart joins at
  // once instead of after the member's session expires (the semantics are the session expiry's).
  const proc: Restarting = new Restarting(
    opts.label,
    (attempt) =>
      startApply(
        {
          brokers: s.brokers,
          groupId,
          topics: s.names!.topics,
          target: opts.target,
          impl,
          crash: attempt === 0 && opts.crash ? { point: APPLY_CRASH_POINT, ...opts.crash } : undefined,
          sessionTimeout: opts.sessionTimeout ?? s.sessionTimeout,
          abortSessions: [...(opts.predecessors ?? []), ...(attempt > 0 ? targetSessions(proc) : [])],
        },
        opts.label,
      ),
    { beforeRestart: supervisor(ctx, s).evictDeadApply(groupId) },
  );
  const h: ApplyHandle = { label: opts.label, target: opts.target, groupId, proc, run };
  proc.onMessage((m) => {
    if (m.ev === 'joined' && proc.restarts > 0) run.rejoinMs.push(Number(m.t) - proc.ends[proc.ends.length - 1]!.at);
    if (m.ev === 'target-session-aborted' && /aborted/i.test(String(m.result))) run.sessionsAborted += 1;
    if (m.ev !== 'batch') return;
    run.batches += 1;
    run.fresh += Number(m.fresh);
    if (opts.killAfterMs !== undefined && !h.killTimer && proc.restarts === 0) {
      // The "random point": a SIGKILL from outside, a seeded delay after the first batch.
      h.killTimer = setTimeout(() => {
        run.killedAfterBatches = run.batches;
        proc.proc.kill();
      }, opts.killAfterMs);
    }
  });
  return h;
}

/** The target sessions the processes of an apply reported (engines with `dialect.sessions`). */
function targetSessions(proc: Restarting): string[] {
  return proc.messages.filter((m) => m.msg.ev === 'target-session').map((m) => String(m.msg.id));
}

/** Clean stop of a crash-test apply (after its crash happened), keeping its group and target. */
async function pauseApply(h: ApplyHandle): Promise<void> {
  const deadline = Date.now() + 30000;
  while (h.proc.restarts === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (h.killTimer) clearTimeout(h.killTimer);
  await h.proc.stop();
  h.paused = { ends: [...h.proc.ends], run: { ...h.run } };
}

/** Starts a paused apply again: same group (resumes at its committed offsets), same target, no crash point. */
function resumeApply(ctx: LabContext, s: State, impl: CdcImpl, h: ApplyHandle): void {
  const next = launchApply(ctx, s, impl, { label: h.label, target: h.target, predecessors: targetSessions(h.proc) });
  h.proc = next.proc;
  next.proc.onMessage((m) => {
    if (m.ev === 'target-session-aborted' && /aborted/i.test(String(m.result))) h.run.sessionsAborted += 1;
    if (m.ev !== 'batch') return;
    h.run.batches += 1;
    h.run.fresh += Number(m.fresh);
  });
}

/** Waits until the apply has committed everything in the topics (after its restarts), then stops it. */
async function drainAndStop(s: State, h: ApplyHandle, killExpected = false): Promise<ApplyRun> {
  const timeout = 60000 + 4 * s.sessionTimeout;
  try {
    if (killExpected) {
      // The kill may come after everything was drained: wait for it, then for the restart to drain.
      const deadline = Date.now() + timeout;
      while (h.run.killedAfterBatches === undefined && h.proc.restarts === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    }
    await waitGroupDrained(s.admin!, h.groupId, s.names!.topics, timeout, () => h.proc.health());
  } finally {
    if (h.killTimer) clearTimeout(h.killTimer);
    await h.proc.stop();
  }
  h.run.crashed = [...(h.paused?.ends ?? []), ...h.proc.ends];
  await s.admin!.deleteGroups([h.groupId]).catch(() => undefined);
  return h.run;
}

/** A consumer group of this run (a candidate's groups never meet another's on shared topics). */
function groupName(ctx: LabContext, s: State, label: string): string {
  return ctx.engines.name(`${s.names!.topicPrefix}_${s.runTag}_${label}`);
}

/** Full run: waits until the slot has passed `endLsn` and the main apply group has consumed every topic. */
function mainCaughtUp(ctx: LabContext, s: State, endLsn: string, timeoutMs: number): Promise<void> {
  return waitCaughtUp({
    admin: s.admin!,
    source: s.source!,
    slot: s.names!.slot,
    endLsn,
    groupId: groupName(ctx, s, 'main'),
    topics: s.names!.topics,
    timeoutMs,
    alive: () => s.capture?.health() ?? s.applyA!.health(),
    signal: ctx.signal,
    describe: () => {
      const a = s.applyA!;
      const last = a.messages.slice(-2).map((m) => JSON.stringify(m.msg).slice(0, 160));
      return `apply pid ${a.proc.pid}, ${a.restarts} restarts, last messages ${last.join(' ')}; stderr: ${a.proc.stderrTail().slice(-300)}`;
    },
  });
}

/** Full run: source, topics, and a capture process streaming while the workload runs (it dies once at its crash point). */
async function setupLiveCapture(ctx: LabContext, s: State): Promise<void> {
  const suffix = randomBytes(2).toString('hex');
  const topicPrefix = ctx.engines.name(`cdc${suffix}`);
  s.names = {
    topicPrefix,
    slot: ctx.engines.name(`cdc_slot_${suffix}`),
    publication: ctx.engines.name(`cdc_pub_${suffix}`),
    topics: SOURCE_TABLES.map((t) => topicFor(topicPrefix, t)),
  };
  const { brokers } = await ctx.engines.kafka();
  s.brokers = brokers;
  s.kafka = kafkaClient(brokers);
  s.admin = s.kafka.admin();
  await s.admin.connect();
  const sourceUrl = await ctx.engines.freshPgDatabase('cdc_source');
  s.source = await ctx.engines.pg(sourceUrl, 'cdc_source');
  s.cleanup = cleanupFor(s);
  ctx.engines.onStop(() => s.cleanup!());

  s.workload = new CdcWorkload(ctx.seed);
  const admin = s.admin;
  const [, , sessionTimeout] = await Promise.all([
    createSourceTables(s.source, s.workload.initialRows(ctx.scale)),
    createTopics(admin, s.names.topics, PARTITIONS),
    consumerSessionTimeout(admin),
  ]);
  s.sessionTimeout = sessionTimeout;

  // Generated up front (same data, same order as generating each phase when it runs): the capture's
  // crash point is armed just past phase 1's exact change count, and the apply's at the change no
  // later phase touches.
  s.phase1Items = s.workload.phase(Math.round(CHANGES_PER_SCALE * ctx.scale), { schemaChangeAt: 0.5 });
  s.phase2Items = s.workload.phase(100);
  s.benchItems = s.workload.phase(Math.round(CHANGES_PER_SCALE * ctx.scale));
  s.sentinel = sentinelChange(s.phase1Items, [...s.phase2Items, ...s.benchItems], topicPrefix);
  const phase1Changes = s.phase1Items.reduce((n, i) => n + (i.kind === 'txn' ? i.ops.length : 0), 0);
  const captureConfig = (s.captureConfig = {
    pgUrl: sourceUrl,
    slot: s.names.slot,
    publication: s.names.publication,
    tables: [...SOURCE_TABLES],
    brokers,
    topicPrefix,
  });
  s.capture = new Restarting('capture', (attempt) =>
    startCapture({
      ...captureConfig,
      // Die in the first flush after phase 1 — after Kafka's ack, before the slot's.
      crash: attempt === 0 ? { point: CAPTURE_CRASH_POINT, afterEvents: phase1Changes + 1 } : undefined,
    }),
  );
}

interface SharedCapture {
  names: NonNullable<State['names']>;
  brokers: string[];
  kafka: Kafka;
  admin: Admin;
  source: PgEngine;
  sessionTimeout: number;
  items: WorkloadItem[];
  sentinel: { topic: string; key: string };
  snapshotRows: number;
  run: WorkloadRun;
  endLsn: string;
  audit: TopicAudit;
}

const sharedCaptures = new WeakMap<object, Map<string, Promise<SharedCapture>>>();

/** The topics of one (engine set, seed, scale), captured once; later candidates reuse them. */
function capturedTopics(ctx: LabContext): Promise<SharedCapture> {
  let byKey = sharedCaptures.get(ctx.engines);
  if (!byKey) sharedCaptures.set(ctx.engines, (byKey = new Map()));
  const key = `${ctx.seed}|${ctx.scale}`;
  let p = byKey.get(key);
  if (!p) {
    p = captureOnce(ctx);
    byKey.set(key, p);
    p.catch(() => byKey!.delete(key));
  }
  return p;
}

/** Source + snapshot + workload → Kafka through the capture process, until the slot has confirmed the end; then the topic audit. */
async function captureOnce(ctx: LabContext): Promise<SharedCapture> {
  const suffix = randomBytes(2).toString('hex');
  const topicPrefix = ctx.engines.name(`cdc${suffix}`);
  const names = {
    topicPrefix,
    slot: ctx.engines.name(`cdc_slot_${suffix}`),
    publication: ctx.engines.name(`cdc_pub_${suffix}`),
    topics: SOURCE_TABLES.map((t) => topicFor(topicPrefix, t)),
  };
  const { brokers } = await ctx.engines.kafka();
  const kafka = kafkaClient(brokers);
  const admin = kafka.admin();
  await admin.connect();
  const sourceUrl = await ctx.engines.freshPgDatabase('cdc_source');
  const source = await ctx.engines.pg(sourceUrl, 'cdc_source');
  let capture: Restarting | undefined;
  ctx.engines.onStop(async () => {
    await capture?.stop().catch(() => undefined);
    await dropSlotAndPublication(source, names);
    await admin.deleteTopics({ topics: names.topics }).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  });
  const workload = new CdcWorkload(ctx.seed);
  await createSourceTables(source, workload.initialRows(ctx.scale));
  await createTopics(admin, names.topics, PARTITIONS);
  const sessionTimeout = await consumerSessionTimeout(admin);
  const items = workload.phase(Math.round(CHANGES_PER_SCALE * ctx.scale), { schemaChangeAt: 0.5 });
  capture = new Restarting('capture', () =>
    startCapture({ pgUrl: sourceUrl, slot: names.slot, publication: names.publication, tables: [...SOURCE_TABLES], brokers, topicPrefix }),
  );
  const ready = await capture.proc.waitFor('ready', 60000);
  const run = await runWorkload(source, items, ctx.signal);
  const endLsn = await currentWalLsn(source);
  const captureTimeoutMs = 60000 + 2000 * ctx.scale;
  const deadline = Date.now() + captureTimeoutMs;
  while ((await slotBehind(source, names.slot, endLsn)) !== 0) {
    const dead = capture.health();
    if (dead) throw new Error(dead);
    if (ctx.signal.aborted) throw new InterruptedError('interrupted');
    if (Date.now() > deadline) throw new Error(`cdc: capture not caught up after ${captureTimeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
  await capture.stop();
  const audit = await auditTopics(kafka, admin, ctx.engines.name(`${topicPrefix}_audit`), names.topics, 60000 + 2000 * ctx.scale);
  return {
    names,
    brokers,
    kafka,
    admin,
    source,
    sessionTimeout,
    items,
    sentinel: sentinelChange(items, [], topicPrefix),
    snapshotRows: Number(ready.snapshotRows),
    run,
    endLsn,
    audit,
  };
}

/** The main target: compare, rows for --out, watermarks, fingerprint, the schema-change figures. */
async function compareMain(s: State): Promise<void> {
  await withTarget(s.targets.main!, async (db) => {
    const diff = await compareAll(s.source!, db);
    const rows: Record<string, Record<string, unknown>[]> = {};
    for (const t of TABLES) rows[t] = await db.query(`SELECT * FROM ${db.dialect.ident(t)} ORDER BY ${db.dialect.ident(KEY[t])}`);
    const watermarks = await db.query(`SELECT * FROM ${WATERMARK_TABLE} ORDER BY topic, kafka_partition`);
    s.main = { diff, rows, watermarks, fingerprint: await fingerprint(db) };
    const col = SCHEMA_CHANGE.column;
    const [src] = await s.source!.query<{ nulls: number; vals: number }>(
      `SELECT COUNT(*) FILTER (WHERE ${col} IS NULL) AS nulls, COUNT(${col}) AS vals FROM customers`,
    );
    const has = (await storedColumns(db, 'customers', [col])).has(col);
    const [tgt] = has ? await db.query<{ nulls: number }>(`SELECT COUNT(*) - COUNT(${col}) AS nulls FROM customers`) : [{ nulls: 0 }];
    Object.assign(s.schema!, { targetHasColumn: has, sourceNulls: Number(src!.nulls), sourceValues: Number(src!.vals), targetNulls: Number(tgt!.nulls) });
  });
}

export const cdcLab: Lab<CdcImpl, State> = {
  id: 'cdc',
  title: 'CDC: Postgres WAL → Kafka → MERGE, exactly-once in effect',
  question: 'Design CDC from an operational Postgres into the warehouse. What makes it exactly-once, and what breaks it?',
  needs: ['postgres', 'kafka'],
  engines: ['duckdb', 'postgres', 'snowflake'],
  reference: referenceImpl,
  pitfalls: cdcPitfalls,
  newState: (ctx) => ({ brokers: [], targets: {}, aBatches: [], lag: [], sessionTimeout: 6000, snapshotRows: 0, mode: ctx.mode, runTag: '' }),
  checkScale: (scale) => Math.min(scale, 0.1),
  steps: [
    {
      title: 'Source tables + rows; capture process: publication, slot, snapshot (op=r); apply process joins its group',
      async run(ctx, impl, s) {
        s.runTag = randomBytes(2).toString('hex');
        // Booted apply (and capture) processes waiting as spares: every start and every restart after
        // a crash takes one instead of booting node + tsx on the spot.
        keepCdcSpares({ apply: 2, capture: ctx.mode === 'full' ? 1 : 0 });
        ctx.engines.onStop(() => stopCdcSpares());
        s.dir = mkdtempSync(join(ctx.workDir, 'cdc-'));
        const make = (c: LabContext, dir: string, label: string) => makePortableTarget(c.engines, c.engine, dir, `cdc_${label}`);
        if (ctx.mode === 'check') {
          // Judging an apply implementation: the capture side is the same for every candidate, so the
          // workload is captured into Kafka once per run (seed, scale) and each candidate replays
          // those topics with its own consumer groups into its own targets.
          const cap = await capturedTopics(ctx);
          Object.assign(s, {
            shared: cap,
            names: cap.names,
            brokers: cap.brokers,
            kafka: cap.kafka,
            admin: cap.admin,
            source: cap.source,
            sessionTimeout: cap.sessionTimeout,
            phase1Items: cap.items,
            sentinel: cap.sentinel,
            snapshotRows: cap.snapshotRows,
            audit: cap.audit,
            lastEndLsn: cap.endLsn,
          });
          s.cleanup = cleanupFor(s);
          ctx.engines.onStop(() => s.cleanup!());
          // The lag is sampled from before the candidate's apply starts: it drains a full backlog.
          s.lagT0 = Date.now();
          s.sampler = sampleLag(s.admin!, s.source!, groupName(ctx, s, 'main'), s.names!.topics, s.names!.slot, s.lagT0);
        } else {
          await setupLiveCapture(ctx, s);
        }
        const { brokers } = s;
        s.targets.main = await make(ctx, s.dir, 'main');
        if (ctx.engine === 'snowflake') s.sf = { emulator: (await ctx.engines.providers()).snowflake?.startsWith('emulator') ?? true };
        const groupId = (s.mainGroup = groupName(ctx, s, 'main'));
        s.applyA = new Restarting(
          'apply',
          () => startApply({ brokers, groupId, topics: s.names!.topics, target: s.targets.main!, impl, sessionTimeout: 10000 }, 'apply'),
          { beforeRestart: supervisor(ctx, s).evictDeadApply(groupId) },
        );
        s.applyA.onMessage((m) => {
          if (m.ev === 'batch') s.aBatches.push({ t: Number(m.t), fresh: Number(m.fresh), lat: (m.lat as number[]) ?? [] });
        });
        // Two more apply processes on the same topics, each into its own fresh target, to be killed:
        // B by its crash point in the batch carrying the sentinel change (after that batch's first
        // commit, whichever the implementation makes first), C by a SIGKILL from outside at a seeded
        // random moment while the workload streams (full run only).
        s.targets.crashB = await make(ctx, s.dir, 'crash_between_commits');
        s.crashB = launchApply(ctx, s, impl, { label: 'crash_between', target: s.targets.crashB, crash: { afterEvents: 0, key: s.sentinel } });
        if (ctx.mode === 'full') {
          s.targets.crashC = await make(ctx, s.dir, 'crash_random');
          s.crashC = launchApply(ctx, s, impl, { label: 'crash_random', target: s.targets.crashC, killAfterMs: new Prng(ctx.seed).fork('cdc-kill').int(100, 1500) });
        }
        const [ready] = await Promise.all([
          s.capture?.proc.waitFor('ready', 60000),
          s.applyA.proc.waitFor('joined', 60000),
          s.crashB.proc.proc.waitFor('joined', 60000),
          s.crashC?.proc.proc.waitFor('joined', 60000),
        ]);
        if (ready) s.snapshotRows = Number(ready.snapshotRows);
        ctx.out.table([
          { process: 'capture', pid: s.capture?.proc.pid ?? null, slot: s.names!.slot, snapshot_rows: s.snapshotRows },
          { process: 'apply', pid: s.applyA.proc.pid, slot: `group ${groupId.slice(-12)}`, snapshot_rows: null },
        ]);
      },
    },
    {
      title: 'Workload: inserts, updates, deletes, re-inserts, hot rows, schema change — while both processes run',
      async run(ctx, _impl, s) {
        if (s.shared) {
          // Check mode: the candidate's apply drains the captured topics (lag sampled since step 1).
          await waitCaughtUp({
            admin: s.admin!,
            source: s.source!,
            slot: s.names!.slot,
            endLsn: s.shared.endLsn,
            groupId: s.mainGroup!,
            topics: s.names!.topics,
            timeoutMs: 60000 + 2000 * ctx.scale,
            alive: () => s.applyA!.health(),
            signal: ctx.signal,
          });
          const fresh = s.aBatches.filter((b) => b.fresh > 0).map((b) => b.t);
          s.phase1 = { ...s.shared.run, startedAt: s.lagT0!, caughtUpAt: fresh.length ? Math.max(...fresh) : Date.now() };
          s.schema = { targetHasColumn: false, sourceNulls: 0, targetNulls: 0, sourceValues: 0, applyRestartsBefore: s.applyA!.restarts, applyPid: s.applyA!.proc.pid };
          ctx.out.table([{ transactions: s.shared.run.transactions, changes: s.shared.run.changes, schema_changes: s.shared.run.ddl, captured_once: true, caught_up_ms: s.phase1.caughtUpAt - s.lagT0! }]);
          return;
        }
        const t0 = Date.now();
        s.sampler = sampleLag(s.admin!, s.source!, groupName(ctx, s, 'main'), s.names!.topics, s.names!.slot, t0);
        const items = s.phase1Items!;
        const restartsBefore = s.applyA!.restarts;
        const applyPid = s.applyA!.proc.pid;
        const run = await runWorkload(s.source!, items, ctx.signal);
        const endLsn = await currentWalLsn(s.source!);
        await mainCaughtUp(ctx, s, endLsn, 60000 + 2000 * ctx.scale);
        const caughtUpAt = Math.max(...s.aBatches.filter((b) => b.fresh > 0).map((b) => b.t));
        s.phase1 = { ...run, startedAt: t0, caughtUpAt };
        s.schema = {
          targetHasColumn: false,
          sourceNulls: 0,
          targetNulls: 0,
          sourceValues: 0,
          applyRestartsBefore: s.applyA!.restarts - restartsBefore,
          applyPid: s.applyA!.proc.pid === applyPid ? applyPid : null,
        };
        ctx.out.table([{ transactions: run.transactions, changes: run.changes, schema_changes: run.ddl, workload_ms: Math.round(run.ms), caught_up_ms: caughtUpAt - t0 }]);
      },
    },
    {
      title: 'Capture crash: SIGKILL after the Kafka ack, before the slot ack — restart, Postgres re-sends',
      async run(ctx, _impl, s) {
        if (s.shared) {
          ctx.out.note('skipped in check mode (the capture is the same for every apply implementation)');
          s.captureCrash = { ends: [], duplicatesPublished: 0 };
          return;
        }
        s.phase2 = await runWorkload(s.source!, s.phase2Items!, ctx.signal);
        const endLsn = await currentWalLsn(s.source!);
        await mainCaughtUp(ctx, s, endLsn, 60000);
        s.lastEndLsn = endLsn;
        s.captureCrash = { ends: [...s.capture!.ends], duplicatesPublished: 0 };
        ctx.out.table(
          s.capture!.ends.map((e) => ({ process: e.process, pid: e.pid, died_by: e.signal ?? `exit ${e.code}`, at_point: e.crashPoint ?? '—', restarted: true })),
        );
      },
    },
    {
      title: 'Throughput: a backlog committed while the capture is stopped, drained end to end',
      benchmarkOnly: true,
      async run(ctx, impl, s) {
        // Only the capture and the main apply run during the measurement: the crash-test applies
        // pause (clean stop, offsets committed) and resume afterwards in the same groups.
        const paused = [s.crashB, s.crashC].filter((h): h is ApplyHandle => !!h);
        await Promise.all(paused.map((h) => pauseApply(h)));
        await s.capture!.stop();
        const run = await runWorkload(s.source!, s.benchItems!, ctx.signal);
        const endLsn = await currentWalLsn(s.source!);
        s.capture = new Restarting('capture', () => startCapture(s.captureConfig!));
        await s.capture.proc.waitFor('ready', 60000);
        const t0 = Date.now();
        await mainCaughtUp(ctx, s, endLsn, 60000 + 2000 * ctx.scale);
        const last = Math.max(...s.aBatches.filter((b) => b.fresh > 0).map((b) => b.t));
        s.lastEndLsn = endLsn;
        s.bench = { changes: run.changes, drainMs: Math.max(1, last - t0), workloadMs: run.ms };
        for (const h of paused) resumeApply(ctx, s, impl, h);
        ctx.out.table([{ backlog_changes: run.changes, committed_in_ms: Math.round(run.ms), drained_in_ms: s.bench.drainMs, events_per_s: Math.round((run.changes / s.bench.drainMs) * 1000) }]);
      },
    },
    {
      title: 'Target equals source? (full NULL-safe compare, every table)',
      async run(ctx, _impl, s) {
        await s.sampler!.stop();
        s.lag = s.sampler!.samples;
        const groupId = groupName(ctx, s, 'main');
        s.lagEnd = { consumerLag: await consumerLag(s.admin!, groupId, s.names!.topics), slotBehindBytes: await slotBehind(s.source!, s.names!.slot, s.lastEndLsn!) };
        s.lag.push({ t: Date.now() - s.phase1!.startedAt, consumerLag: s.lagEnd.consumerLag, slotLagBytes: s.lagEnd.slotBehindBytes });
        // Each target is compared as soon as its apply has stopped, the three side by side.
        const [b, c] = await Promise.all([
          drainAndStop(s, s.crashB!).then(async (r) => ({ ...r, diff: await withTarget(s.targets.crashB!, (db) => compareAll(s.source!, db)) })),
          s.crashC ? drainAndStop(s, s.crashC, true).then(async (r) => ({ ...r, diff: await withTarget(s.targets.crashC!, (db) => compareAll(s.source!, db)) })) : null,
          s.capture?.stop(),
          s.applyA!.stop().then(() => compareMain(s)),
        ]);
        s.crashBetweenCommits = b;
        if (c) s.crashRandom = c;
        const rows = [
          { target: 'main', diff: s.main!.diff },
          { target: 'killed between commits', diff: s.crashBetweenCommits.diff! },
          ...(s.crashRandom ? [{ target: 'killed at random', diff: s.crashRandom.diff! }] : []),
        ];
        ctx.out.table(
          rows.flatMap((r) => r.diff.map((d) => ({ target: r.target, ...d }))).map((d) => ({
            target: d.target,
            table: d.table,
            source_rows: d.sourceRows,
            target_rows: d.targetRows,
            missing: d.missing.length,
            extra: d.extra.length,
            differing: d.differing.length,
            duplicated: d.duplicated.length,
          })),
        );
      },
    },
    {
      title: 'Replay every topic from offset 0 into the converged target (a new consumer group)',
      async run(ctx, impl, s) {
        const h = launchApply(ctx, s, impl, { label: 'replay', target: s.targets.main!, sessionTimeout: 10000 });
        const replay = await drainAndStop(s, h);
        const fpAfter = await withTarget(s.targets.main!, (db) => fingerprint(db));
        s.replay = { ...replay, fingerprintBefore: s.main!.fingerprint, fingerprintAfter: fpAfter };
        const killed = [s.crashB, s.crashC].filter((x): x is ApplyHandle => !!x);
        // Where a kill leaves its transaction open (Snowflake), how many the restarts had to abort.
        const detached = s.targets.main!.engine === 'snowflake';
        ctx.out.table([
          {
            apply: 'replay from offset 0',
            batches: replay.batches,
            crashes: 0,
            rejoin_ms: null,
            ...(detached ? { dead_sessions_aborted: 0 } : {}),
            events_applied: replay.fresh,
            target_unchanged: fpAfter === s.main!.fingerprint,
          },
          ...killed.map((k) => ({
            apply: k.label === 'crash_between' ? 'killed between commits' : `killed at random (after batch ${k.run.killedAfterBatches ?? '?'})`,
            batches: k.run.batches,
            crashes: k.run.crashed.length,
            rejoin_ms: k.run.rejoinMs[0] ?? null,
            ...(detached ? { dead_sessions_aborted: k.run.sessionsAborted } : {}),
            events_applied: k.run.fresh,
            target_unchanged: null,
          })),
        ]);
      },
    },
    {
      title: 'What the topics carry: a bare consumer reads them (tombstones, duplicates, same-ts_ms keys; the throughput floor)',
      async run(ctx, _impl, s) {
        // Check mode: audited once, when the shared topics were captured.
        if (!s.shared) s.audit = await auditTopics(s.kafka!, s.admin!, ctx.engines.name(`${s.names!.topicPrefix}_audit`), s.names!.topics, 60000 + 2000 * ctx.scale);
        if (!s.audit) throw new Error('cdc: no topic audit');
        s.captureCrash!.duplicatesPublished = s.audit.duplicateEvents;
        ctx.out.table([
          {
            events: s.audit.events,
            r: s.audit.byOp.r ?? 0,
            c: s.audit.byOp.c ?? 0,
            u: s.audit.byOp.u ?? 0,
            d: s.audit.byOp.d ?? 0,
            tombstones: s.audit.tombstones,
            duplicates: s.audit.duplicateEvents,
            raw_events_per_s: Math.round(s.audit.rawEventsPerS),
          },
        ]);
        await s.cleanup!();
      },
    },
  ],
  claims: [
    {
      id: 'convergence',
      title: 'Target converges to the source',
      statement:
        'After a seeded workload (inserts, updates, deletes, a deleted key re-inserted, many updates of one row in one transaction and across batches, multi-row transactions), the target equals the source: full NULL-safe compare of every row and column.',
      check: (s) => {
        const d = s.main?.diff ?? [];
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
      },
    },
    {
      id: 'redelivery-harmless',
      title: 'Replaying the topic changes nothing',
      statement: 'Replaying every topic from offset 0 into the converged target applies nothing: every event is at or below the applied watermark, and the target is byte-for-byte the same.',
      check: (s) => {
        const r = s.replay;
        const same = !!r && r.fingerprintBefore === r.fingerprintAfter;
        return {
          passed: !!r && r.batches > 0 && r.fresh === 0 && same,
          evidence: { replayed_batches: r?.batches ?? null, events_applied_again: r?.fresh ?? null, target_unchanged: r ? same : null },
          counterexample: r && !same ? `replaying ${r.batches} batches changed the target (fingerprint ${r.fingerprintBefore} → ${r.fingerprintAfter}); ${r.fresh} events were applied again` : undefined,
        };
      },
    },
    {
      id: 'crash-safety',
      title: 'Crashes lose nothing and double nothing',
      statement:
        'SIGKILL of the apply process between the target commit and the offset commit, SIGKILL at a random point, and SIGKILL of the capture process between the Kafka ack and the slot ack: after restarts the target still equals the source.',
      check: (s) => {
        const b = s.crashBetweenCommits;
        const c = s.crashRandom;
        const full = s.mode === 'full';
        const bOk = !!b && b.crashed.some((e) => e.crashPoint === APPLY_CRASH_POINT) && b.diff!.every(diffIsEmpty);
        const cOk = !full || (!!c && c.crashed.length > 0 && c.diff!.every(diffIsEmpty));
        const capCrashed = s.captureCrash?.ends.some((e) => e.crashPoint === CAPTURE_CRASH_POINT) ?? false;
        const capOk = !full || (capCrashed && (s.main?.diff ?? []).every(diffIsEmpty) && s.main!.diff.length > 0);
        const counter = !bOk
          ? b && !b.crashed.some((e) => e.crashPoint === APPLY_CRASH_POINT)
            ? 'the apply process never reached its crash point'
            : `after SIGKILL between the two commits and a restart: ${firstDifference(b?.diff ?? []) ?? 'no diff'}`
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
            apply_kill_between_commits: b ? bOk : null,
            apply_kill_random: full ? (c ? cOk : null) : 'skipped',
            capture_kill_after_kafka_ack: full ? capOk : 'skipped',
            events_published_twice: full ? (s.captureCrash?.duplicatesPublished ?? null) : null,
          },
          counterexample: counter,
        };
      },
    },
    {
      id: 'ordering-by-lsn',
      title: 'Same-ts_ms changes resolve by LSN',
      statement: 'Rows changed several times with the same ts_ms (one transaction) end in the source’s final state: the apply orders by LSN, not by time.',
      check: (s) => {
        const keys = s.audit?.sameTsKeys ?? [];
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
      },
    },
    {
      id: 'deletes-propagate',
      title: 'Deletes propagate, tombstones follow',
      statement: 'Rows deleted at the source are gone from the target, and in the topic every delete event is followed by a tombstone for its key.',
      check: (s) => {
        const a = s.audit;
        const extra = (s.main?.diff ?? []).reduce((n, x) => n + x.extra.length, 0);
        const d = a?.byOp.d ?? 0;
        return {
          passed: !!a && d > 0 && a.deletesWithoutTombstone === 0 && a.tombstones >= d && extra === 0 && !!s.main,
          evidence: { delete_events: d, tombstones: a?.tombstones ?? null, deletes_without_tombstone: a?.deletesWithoutTombstone ?? null, deleted_rows_still_in_target: extra },
          counterexample: extra > 0 ? `${(s.main!.diff.find((x) => x.extra.length)?.extra[0]) ?? ''} was deleted at the source but is still in the target` : a && a.deletesWithoutTombstone ? `${a.deletesWithoutTombstone} deletes have no tombstone` : undefined,
        };
      },
    },
    {
      id: 'lag-visible',
      title: 'Lag is visible, and zero at the end',
      statement: 'Consumer-group lag (messages) and replication-slot lag (WAL bytes) are sampled during the run, and both are zero once the pipeline has caught up.',
      check: (s) => {
        const during = s.lag.slice(0, -1);
        const end = s.lagEnd;
        return {
          passed: during.length >= 2 && !!end && end.consumerLag === 0 && end.slotBehindBytes === 0,
          evidence: {
            samples: during.length,
            max_consumer_lag: during.length ? Math.max(...during.map((x) => x.consumerLag)) : null,
            max_slot_lag_bytes: during.length ? Math.max(...during.map((x) => x.slotLagBytes)) : null,
            end_consumer_lag: end?.consumerLag ?? null,
            end_slot_lag_bytes: end?.slotBehindBytes ?? null,
          },
          counterexample: end && end.consumerLag !== 0 ? `consumer lag ${end.consumerLag} at the end` : end && end.slotBehindBytes !== 0 ? `slot ${end.slotBehindBytes} bytes behind at the end` : undefined,
        };
      },
    },
    {
      id: 'schema-change',
      title: 'Added column arrives, nullable',
      statement: 'A column added at the source while the pipeline runs appears in the target (nullable, older rows NULL, newer rows with their values) without restarting the apply process.',
      check: (s) => {
        const x = s.schema;
        const colDiff = (s.main?.diff ?? []).find((d) => d.table === 'customers');
        const passed = !!x && x.targetHasColumn && x.targetNulls === x.sourceNulls && x.sourceNulls > 0 && x.sourceValues > 0 && x.applyRestartsBefore === 0 && !!colDiff && diffIsEmpty(colDiff);
        return {
          passed,
          evidence: {
            target_has_column: x?.targetHasColumn ?? null,
            null_rows_source: x?.sourceNulls ?? null,
            null_rows_target: x?.targetNulls ?? null,
            rows_with_values: x?.sourceValues ?? null,
            apply_restarts: x?.applyRestartsBefore ?? null,
          },
          counterexample: x && !x.targetHasColumn ? `target customers has no ${SCHEMA_CHANGE.column}` : colDiff && !diffIsEmpty(colDiff) ? firstDifference([colDiff]) : undefined,
        };
      },
    },
  ],
  metrics: (s) => {
    const lat = phase1Latencies(s);
    const p1 = s.phase1;
    // Full run: the backlog drain (the pipeline's capacity); check mode: the streamed phase.
    const e2e = s.bench
      ? (s.bench.changes / s.bench.drainMs) * 1000
      : p1 && p1.caughtUpAt > p1.startedAt
        ? (p1.changes / (p1.caughtUpAt - p1.startedAt)) * 1000
        : 0;
    const raw = s.audit?.rawEventsPerS ?? 0;
    return {
      cdc_events: s.bench?.changes ?? p1?.changes ?? 0,
      cdc_e2e_events_per_s: Math.round(e2e),
      cdc_p50_latency_ms: percentile(lat, 50),
      cdc_p99_latency_ms: percentile(lat, 99),
      cdc_raw_consume_events_per_s: Math.round(raw),
      cdc_e2e_over_raw: raw > 0 ? Number((e2e / raw).toFixed(3)) : 0,
      // --engine snowflake (issue 8): Kafka → Snowflake MERGE, the same drain as cdc_e2e_events_per_s;
      // sf_emulator 1 = measured on the fakesnow emulator, not Snowflake.
      ...(s.sf ? { sf_cdc_apply_events_per_s: Math.round(e2e), sf_emulator: s.sf.emulator ? 1 : 0 } : {}),
    };
  },
  charts: (s): ChartSpec[] => {
    const lat = phase1Latencies(s);
    const buckets = HIST_EDGES.map((le, i) => ({ x: `≤${le}`, y: lat.filter((l) => l <= le && (i === 0 || l > HIST_EDGES[i - 1]!)).length }));
    buckets.push({ x: `>${HIST_EDGES[HIST_EDGES.length - 1]}`, y: lat.filter((l) => l > HIST_EDGES[HIST_EDGES.length - 1]!).length });
    // Marked on the lag chart: each process death while it was sampled (a kill or a crash point),
    // and the peak backlog — where the lag comes from, and that it drains after each one.
    const t0 = s.phase1?.startedAt;
    const lastT = s.lag.at(-1)?.t ?? 0;
    const deaths = t0 === undefined ? [] : [...(s.captureCrash?.ends ?? []), ...(s.applyA?.ends ?? [])].filter((e) => e.at - t0 >= 0 && e.at - t0 <= lastT);
    const peak = s.lag.reduce<LagSample | undefined>((m, l) => (!m || l.consumerLag > m.consumerLag ? l : m), undefined);
    const marks = [
      ...deaths.map((e) => ({ x: (e.at - t0!) / 1000, label: `${e.process} ${e.signal === 'SIGKILL' ? 'killed' : 'died'}${e.crashPoint ? ` (${e.crashPoint})` : ''}` })),
      ...(peak && peak.consumerLag > 0 ? [{ x: peak.t / 1000, label: `peak backlog ${peak.consumerLag}` }] : []),
    ];
    return [
      {
        kind: 'line',
        id: 'cdc-lag',
        title: 'Lag over time: consumer group (messages) and replication slot (KiB)',
        x: 'seconds since the workload started',
        y: 'lag',
        series: [
          { name: 'consumer lag (messages)', points: s.lag.map((l) => ({ x: l.t / 1000, y: l.consumerLag })) },
          { name: 'slot lag (KiB)', points: s.lag.map((l) => ({ x: l.t / 1000, y: Math.round(l.slotLagBytes / 1024) })) },
        ],
        marks,
      },
      {
        kind: 'bar',
        id: 'cdc-latency',
        title: 'Latency, source commit → visible in the target (ms)',
        x: 'latency bucket (ms)',
        y: 'events',
        series: [{ name: 'events', points: buckets }],
      },
    ];
  },
  async persist(s, out) {
    await out.table('cdc_customers', s.main?.rows.customers ?? []);
    await out.table('cdc_orders', s.main?.rows.orders ?? []);
    await out.table('cdc_applied_lsn', s.main?.watermarks ?? []);
    await out.table('cdc_lag', s.lag.map((l) => ({ t_ms: l.t, consumer_lag: l.consumerLag, slot_lag_bytes: l.slotLagBytes })));
    const lat = phase1Latencies(s);
    await out.table('cdc_latency_ms', lat.map((l) => ({ latency_ms: l })));
  },
  exercise: {
    stub: 'labs/cdc/exercise/stub.ts',
    solution: 'pipelines/cdc/apply.ts',
    load: (module) => {
      const url = module.MODULE_URL;
      if (typeof url !== 'string') throw new Error('the exercise module must keep `export const MODULE_URL = import.meta.url` (the apply process imports it)');
      if (typeof module.applyBatch !== 'function') throw new Error('the exercise module must export `applyBatch`');
      return { applyModule: url, applyExport: 'applyBatch', commitOffsets: 'after-target-commit' };
    },
    hints: [
      'One transaction per batch: read the watermark, MERGE, write the new watermark — all inside `db.transaction`, so a crash leaves either everything or nothing. Create the stage (DDL) before it: Snowflake commits on DDL.',
      'Skip what is already applied: `isBeyondWatermark(event, watermark)` — a replayed or re-sent event is at or below the watermark.',
      'Several changes of one key in one batch: keep only the latest, by position (`_commit_lsn DESC, _lsn DESC`), never by `_ts_ms` — one transaction shares one ts_ms.',
      'The MERGE needs three branches: matched + op d → DELETE; matched → UPDATE; not matched + op not d → INSERT. An update for a key the target never saw must insert.',
      '`createStage` makes the temp table (before the transaction), `stageChanges` loads the batch into it; `mergeLatestSql(db, table, stage)` writes the reference MERGE, if you want to compare with yours.',
    ],
    nudges: {
      convergence: 'Compare the counterexample row with its changes in the batch: was the latest change applied, and did an update of an unseen key insert it?',
      'redelivery-harmless': 'A replay must be a no-op: filter events at or below the watermark, and advance the watermark in the same transaction as the MERGE.',
      'crash-safety': 'If the process dies right after your target commit, the same batch comes again: is it recognised by the watermark?',
      'ordering-by-lsn': 'ts_ms ties inside a transaction: order the latest change per key by (_commit_lsn, _lsn).',
      'deletes-propagate': 'A delete is a MERGE branch (WHEN MATCHED AND op = d THEN DELETE), not a row to insert.',
      'lag-visible': 'Lag only reaches zero when every batch commits its offsets — does your apply finish every batch?',
      'schema-change': 'Use input.table.columns (every column seen in the batch), not a fixed column list.',
    },
  },
};

function cleanupFor(s: State): () => Promise<void> {
  let done = false;
  return async () => {
    if (done) return;
    done = true;
    await Promise.allSettled([s.capture?.stop(), s.applyA?.stop(), s.crashB?.proc.stop(), s.crashC?.proc.stop(), s.sampler?.stop()]);
    if (s.shared) {
      // The topics, slot and source belong to the shared capture: only this candidate's groups go.
      if (s.mainGroup) await s.admin?.deleteGroups([s.mainGroup]).catch(() => undefined);
      return;
    }
    if (s.source && s.names) await dropSlotAndPublication(s.source, s.names);
    if (s.admin && s.names) {
      await s.admin.deleteTopics({ topics: s.names.topics }).catch(() => undefined);
      await s.admin.disconnect().catch(() => undefined);
    }
  };
}
