/**
 * Where the cdc lab's change events come from, chosen once per run instead of branches in every
 * step:
 *
 *   live    fresh source tables and topics; a capture process streams each workload phase into
 *           Kafka while the applies run, and dies once at its crash point (after Kafka's ack,
 *           before the slot's) in the first flush after the streamed phase, then restarts
 *   replay  the topics of one (engine set, seed, scale) captured once and kept; each candidate
 *           apply (a pitfall, an exercise) replays them with its own consumer groups — the capture
 *           side is the same for every candidate, so it is not run again for each
 *
 * The steps call the same methods on either; what a source cannot do (replay: the capture crash,
 * the backlog) it says with `live`, and the evidence records it.
 */
import { randomBytes } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import type { Engines } from '../engines/index.ts';
import type { PgEngine } from '../engines/postgres/driver.ts';
import type { Row, WorkloadItem } from '../../fixtures/cdc.ts';
import { InterruptedError } from '../errors.ts';
import { CAPTURE_CRASH_POINT, Restarting, auditTopics, consumerSessionTimeout, createTopics, kafkaClient, slotBehind, startCapture, topicFor, type ProcessEnd, type TopicAudit } from './index.ts';
import { createSourceTables, currentWalLsn, dropSlotAndPublication, runWorkload, type WorkloadRun } from './source.ts';

export interface CaptureNames {
  topicPrefix: string;
  slot: string;
  publication: string;
  topics: string[];
}

/** What the applies and the claims need of the source side, once it is open. */
export interface OpenSource {
  names: CaptureNames;
  brokers: string[];
  kafka: Kafka;
  admin: Admin;
  /** The source database (compared against every target). */
  source: PgEngine;
  /** The broker's shortest consumer session (the crash-test applies use it). */
  sessionTimeout: number;
}

/** The workload of one run: generated up front by the lab, so the crash points can be armed on exact changes. */
export interface CapturePlan {
  tables: readonly string[];
  partitions: number;
  initialRows: { customers: Row[]; orders: Row[] };
  /** Streamed while the applies run (live), or captured once and replayed. */
  stream: WorkloadItem[];
  /** Live only: after the stream; the capture dies in its first flush of these. */
  crash: WorkloadItem[];
  /** Live only: committed while the capture is stopped, then drained (the throughput figure). */
  backlog: WorkloadItem[];
  /** Bounds the waits on the capture (larger scales take longer). */
  timeoutMs: number;
}

/** A workload phase as the source ran it, and the WAL position that means "all of it captured". */
export interface SourcePhase {
  run: WorkloadRun;
  endLsn: string;
}

export interface CaptureSource {
  readonly kind: 'live' | 'replay';
  /** Live: the changes stream while the applies run (the random kill and the capture crash need that). */
  readonly live: boolean;
  /** Booted capture processes to keep as spares (a live capture restarts after its crash). */
  readonly spareCaptures: number;
  /** Source tables and rows, topics, the capture started (slot, publication, snapshot). */
  open(): Promise<OpenSource>;
  /** Resolves with the snapshot's row count once the capture is streaming. */
  ready(): Promise<number>;
  /** The streamed phase: run now (live) or the one captured once (replay). */
  stream(signal: AbortSignal): Promise<SourcePhase>;
  /** Live: the phase the capture dies in (null: not tested by this source). */
  crash(signal: AbortSignal): Promise<SourcePhase | null>;
  /** Live: capture stopped, backlog committed, capture started again; resolves once it streams. */
  backlog(signal: AbortSignal): Promise<SourcePhase>;
  /** The running capture process (null: none runs). */
  pid(): number | null;
  /** Deaths of the capture process so far. */
  ends(): readonly ProcessEnd[];
  /** null while the capture is healthy (or not running); why not, once it gave up. */
  health(): string | null;
  stopCapture(): Promise<void>;
  /** What the topics carry, read by a bare consumer (replay: audited once, when captured). */
  audit(): Promise<TopicAudit>;
  /** Drops what this source made for this run only (live: slot, publication, topics). */
  close(): Promise<void>;
}

export interface SourceDeps {
  engines: Engines;
  plan: CapturePlan;
  /** The run's interrupt: the capture waits stop early. */
  signal: AbortSignal;
}

/** Fresh names, Kafka admin, source database with its rows, topics: the start of either source. */
async function openFresh(engines: Engines, plan: CapturePlan): Promise<OpenSource & { sourceUrl: string }> {
  const suffix = randomBytes(2).toString('hex');
  const topicPrefix = engines.name(`cdc${suffix}`);
  const names = {
    topicPrefix,
    slot: engines.name(`cdc_slot_${suffix}`),
    publication: engines.name(`cdc_pub_${suffix}`),
    topics: plan.tables.map((t) => topicFor(topicPrefix, t)),
  };
  const { brokers } = await engines.kafka();
  const kafka = kafkaClient(brokers);
  const admin = kafka.admin();
  await admin.connect();
  const sourceUrl = await engines.freshPgDatabase('cdc_source');
  const source = await engines.pg(sourceUrl, 'cdc_source');
  const [, , sessionTimeout] = await Promise.all([createSourceTables(source, plan.initialRows), createTopics(admin, names.topics, plan.partitions), consumerSessionTimeout(admin)]);
  return { names, brokers, kafka, admin, source, sessionTimeout, sourceUrl };
}

async function dropFresh(o: OpenSource): Promise<void> {
  await dropSlotAndPublication(o.source, o.names);
  await o.admin.deleteTopics({ topics: o.names.topics }).catch(() => undefined);
  await o.admin.disconnect().catch(() => undefined);
}

const changes = (items: readonly WorkloadItem[]) => items.reduce((n, i) => n + (i.kind === 'txn' ? i.ops.length : 0), 0);

/** Waits until the slot has confirmed `endLsn`: every change up to it is in Kafka. */
async function untilSlotPasses(o: OpenSource, endLsn: string, timeoutMs: number, health: () => string | null, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await slotBehind(o.source, o.names.slot, endLsn)) !== 0) {
    const dead = health();
    if (dead) throw new Error(dead);
    if (signal.aborted) throw new InterruptedError('interrupted');
    if (Date.now() > deadline) throw new Error(`cdc: capture not caught up after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Our capture process, live: the workload streams through it while the applies run. */
export function liveCapture({ engines, plan }: SourceDeps): CaptureSource {
  let o: (OpenSource & { sourceUrl: string }) | undefined;
  let capture: Restarting | undefined;
  const opened = () => {
    if (!o) throw new Error('cdc: the capture source was not opened');
    return o;
  };
  const config = () => {
    const x = opened();
    return { pgUrl: x.sourceUrl, slot: x.names.slot, publication: x.names.publication, tables: [...plan.tables], brokers: x.brokers, topicPrefix: x.names.topicPrefix };
  };
  return {
    kind: 'live',
    live: true,
    spareCaptures: 1,
    async open() {
      o = await openFresh(engines, plan);
      // Die in the first flush after the streamed phase — after Kafka's ack, before the slot's.
      const crashAfter = changes(plan.stream) + 1;
      capture = new Restarting('capture', (attempt) => startCapture({ ...config(), crash: attempt === 0 ? { point: CAPTURE_CRASH_POINT, afterEvents: crashAfter } : undefined }));
      return o;
    },
    ready: async () => Number((await capture!.proc.waitFor('ready', 60000)).snapshotRows),
    stream: async (signal) => ({ run: await runWorkload(opened().source, plan.stream, signal), endLsn: await currentWalLsn(opened().source) }),
    crash: async (signal) => ({ run: await runWorkload(opened().source, plan.crash, signal), endLsn: await currentWalLsn(opened().source) }),
    async backlog(signal) {
      await capture?.stop();
      const run = await runWorkload(opened().source, plan.backlog, signal);
      const endLsn = await currentWalLsn(opened().source);
      capture = new Restarting('capture', () => startCapture(config()));
      await capture.proc.waitFor('ready', 60000);
      return { run, endLsn };
    },
    pid: () => capture?.proc.pid ?? null,
    ends: () => capture?.ends ?? [],
    health: () => capture?.health() ?? null,
    stopCapture: async () => void (await capture?.stop()),
    audit: () => auditTopics(opened().kafka, opened().admin, engines.name(`${opened().names.topicPrefix}_audit`), opened().names.topics, plan.timeoutMs),
    async close() {
      await capture?.stop().catch(() => undefined);
      if (o) await dropFresh(o);
    },
  };
}

interface CapturedOnce extends OpenSource, SourcePhase {
  snapshotRows: number;
  audit: TopicAudit;
}

const capturedOnce = new WeakMap<Engines, Map<string, Promise<CapturedOnce>>>();

/**
 * The topics captured once per (engine set, `key`) — source, snapshot and the streamed phase
 * through our capture until the slot confirmed the end, then audited — replayed by each candidate.
 * They are dropped when the engines stop.
 */
export function replayCapture({ engines, plan, signal }: SourceDeps, key: string): CaptureSource {
  let byKey = capturedOnce.get(engines);
  if (!byKey) capturedOnce.set(engines, (byKey = new Map()));
  const shared = () => {
    let p = byKey!.get(key);
    if (!p) {
      p = captureOnce(engines, plan, signal);
      byKey!.set(key, p);
      p.catch(() => byKey!.delete(key));
    }
    return p;
  };
  return {
    kind: 'replay',
    live: false,
    spareCaptures: 0,
    open: shared,
    ready: async () => (await shared()).snapshotRows,
    stream: shared,
    crash: async () => null,
    backlog: () => Promise.reject(new Error('cdc: a replayed capture has no backlog to drain')),
    pid: () => null,
    ends: () => [],
    health: () => null,
    stopCapture: async () => undefined,
    audit: async () => (await shared()).audit,
    // The topics, slot and source serve later candidates: they go with the engines.
    close: async () => undefined,
  };
}

async function captureOnce(engines: Engines, plan: CapturePlan, signal: AbortSignal): Promise<CapturedOnce> {
  const o = await openFresh(engines, plan);
  let capture: Restarting | undefined;
  engines.onStop(async () => {
    await capture?.stop().catch(() => undefined);
    await dropFresh(o);
  });
  const { names, brokers } = o;
  capture = new Restarting('capture', () =>
    startCapture({ pgUrl: o.sourceUrl, slot: names.slot, publication: names.publication, tables: [...plan.tables], brokers, topicPrefix: names.topicPrefix }),
  );
  const ready = await capture.proc.waitFor('ready', 60000);
  const run = await runWorkload(o.source, plan.stream, signal);
  const endLsn = await currentWalLsn(o.source);
  await untilSlotPasses(o, endLsn, plan.timeoutMs, () => capture!.health(), signal);
  await capture.stop();
  const audit = await auditTopics(o.kafka, o.admin, engines.name(`${names.topicPrefix}_audit`), names.topics, plan.timeoutMs);
  return { ...o, run, endLsn, snapshotRows: Number(ready.snapshotRows), audit };
}
