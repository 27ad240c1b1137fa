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
import { debeziumCapture } from './debezium-capture.ts';
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

/** One capture, running: ours (a child process) or Debezium (a Connect worker), restarted after its crash. */
export interface CaptureProcess {
  /** Resolves once the capture streams, with the snapshot's row count. */
  ready(): Promise<number>;
  pid(): number | null;
  readonly ends: ProcessEnd[];
  health(): string | null;
  /**
   * From now on, die at the capture crash point — after Kafka's ack, before the slot's — in the
   * next write to Kafka (for captures whose crash point is not armed at start), then restart.
   */
  armCrash?(): void;
  stop(): Promise<void>;
}

/** Which capture writes the topics: how to start one on an open source. */
export interface CaptureKind {
  readonly name: CaptureName;
  /** Booted processes to keep as spares for a live run. */
  readonly spares: number;
  /** `crashAfterEvents`: die at the crash point in the first flush past this many events (first run only). */
  start(o: OpenSource & { sourceUrl: string }, plan: CapturePlan, opts: { crashAfterEvents?: number; resume?: boolean }): CaptureProcess;
  /** Drops what it made besides the slot, publication and topics (Debezium: its heartbeat topic). */
  close?(o: OpenSource): Promise<void>;
  /** Live: the backlog timed on both captures, ours over Debezium's events/s (Debezium only). */
  compareOnBacklog?(deps: SourceDeps, o: OpenSource & { sourceUrl: string }, run: () => Promise<void>): Promise<number>;
}

/** Our capture process (pipelines/cdc/capture.ts), its crash point inside it. */
export const ourCapture: CaptureKind = {
  name: 'ours',
  spares: 1,
  start(o, plan, opts) {
    const config = { pgUrl: o.sourceUrl, slot: o.names.slot, publication: o.names.publication, tables: [...plan.tables], brokers: o.brokers, topicPrefix: o.names.topicPrefix };
    const crashAfter = opts.crashAfterEvents;
    const r = new Restarting('capture', (attempt) => startCapture({ ...config, crash: attempt === 0 && crashAfter !== undefined ? { point: CAPTURE_CRASH_POINT, afterEvents: crashAfter } : undefined }));
    return {
      ready: async () => Number((await r.proc.waitFor('ready', 60000)).snapshotRows),
      pid: () => r.proc.pid,
      ends: r.ends,
      health: () => r.health(),
      stop: () => r.stop(),
    };
  },
};

/** The captures `--capture` chooses from; the first is the default. */
export const CAPTURES = ['ours', 'debezium'] as const;
export type CaptureName = (typeof CAPTURES)[number];

/** The capture named `name`, made for one run (Debezium's offsets go to a temp dir of `engines`). */
export function captureKind(name: string, engines: Engines, log: (m: string) => void): CaptureKind {
  const kinds: Record<CaptureName, () => CaptureKind> = {
    ours: () => ourCapture,
    debezium: () => debeziumCapture(engines.env, () => engines.tempDir('cdc-debezium'), log),
  };
  const make = kinds[name as CaptureName];
  if (!make) throw new Error(`cdc: no capture named ${name} (known: ${CAPTURES.join(', ')})`);
  return make();
}

export interface CaptureSource {
  readonly kind: 'live' | 'replay';
  /** Which capture writes the topics. */
  readonly capture: CaptureName;
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
  /**
   * Live: capture stopped, backlog committed, capture started again; resolves once it streams.
   * With Debezium, the backlog is first captured by ours and by Debezium each alone (their own
   * slots and topics): `captureOverDebezium` is our events/s over Debezium's.
   */
  backlog(signal: AbortSignal): Promise<SourcePhase & { captureOverDebezium?: number }>;
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
  capture: CaptureKind;
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

/** A capture, live: the workload streams through it while the applies run. */
export function liveCapture(deps: SourceDeps): CaptureSource {
  const { engines, plan, capture: kind } = deps;
  let o: (OpenSource & { sourceUrl: string }) | undefined;
  let capture: CaptureProcess | undefined;
  const ends: ProcessEnd[] = [];
  const opened = () => {
    if (!o) throw new Error('cdc: the capture source was not opened');
    return o;
  };
  const phase = async (items: WorkloadItem[], signal: AbortSignal) => ({ run: await runWorkload(opened().source, items, signal), endLsn: await currentWalLsn(opened().source) });
  const stopCapture = async () => {
    if (!capture) return;
    await capture.stop();
    ends.push(...capture.ends);
    capture = undefined;
  };
  return {
    kind: 'live',
    capture: kind.name,
    live: true,
    spareCaptures: kind.spares,
    async open() {
      o = await openFresh(engines, plan);
      // Die in the first flush after the streamed phase — after Kafka's ack, before the slot's.
      capture = kind.start(o, plan, { crashAfterEvents: changes(plan.stream) + 1 });
      return o;
    },
    ready: () => capture!.ready(),
    stream: (signal) => phase(plan.stream, signal),
    crash: (signal) => {
      capture?.armCrash?.();
      return phase(plan.crash, signal);
    },
    async backlog(signal) {
      await stopCapture();
      let captureOverDebezium: number | undefined;
      let run: WorkloadRun | undefined;
      const commit = async () => void (run = await runWorkload(opened().source, plan.backlog, signal));
      if (kind.compareOnBacklog) captureOverDebezium = await kind.compareOnBacklog(deps, opened(), commit);
      else await commit();
      const endLsn = await currentWalLsn(opened().source);
      capture = kind.start(opened(), plan, { resume: true });
      await capture.ready();
      return { run: run!, endLsn, ...(captureOverDebezium === undefined ? {} : { captureOverDebezium }) };
    },
    pid: () => capture?.pid() ?? null,
    ends: () => [...ends, ...(capture?.ends ?? [])],
    health: () => capture?.health() ?? null,
    stopCapture,
    audit: () => auditTopics(opened().kafka, opened().admin, engines.name(`${opened().names.topicPrefix}_audit`), opened().names.topics, plan.timeoutMs),
    async close() {
      await stopCapture().catch(() => undefined);
      if (o) {
        await kind.close?.(o);
        await dropFresh(o);
      }
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
export function replayCapture(deps: SourceDeps, key: string): CaptureSource {
  const { engines } = deps;
  let byKey = capturedOnce.get(engines);
  if (!byKey) capturedOnce.set(engines, (byKey = new Map()));
  const shared = () => {
    let p = byKey!.get(key);
    if (!p) {
      p = captureOnce(deps);
      byKey!.set(key, p);
      p.catch(() => byKey!.delete(key));
    }
    return p;
  };
  return {
    kind: 'replay',
    capture: deps.capture.name,
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

async function captureOnce({ engines, plan, signal, capture: kind }: SourceDeps): Promise<CapturedOnce> {
  const o = await openFresh(engines, plan);
  let capture: CaptureProcess | undefined;
  engines.onStop(async () => {
    await capture?.stop().catch(() => undefined);
    await kind.close?.(o);
    await dropFresh(o);
  });
  capture = kind.start(o, plan, {});
  const snapshotRows = await capture.ready();
  const run = await runWorkload(o.source, plan.stream, signal);
  const endLsn = await currentWalLsn(o.source);
  await untilSlotPasses(o, endLsn, plan.timeoutMs, () => capture!.health(), signal);
  await capture.stop();
  const audit = await auditTopics(o.kafka, o.admin, engines.name(`${o.names.topicPrefix}_audit`), o.names.topics, plan.timeoutMs);
  return { ...o, run, endLsn, snapshotRows, audit };
}
