/**
 * The cdc pipeline, as the lab drives it:
 *
 *   Postgres ──pgoutput──▶ capture process ──▶ Kafka (topic per table, key = PK) ──▶ apply process ──MERGE──▶ target
 *   (source)   slot + publication              acks=all, then slot ack              group, offsets after commit    DuckDB | Postgres
 *
 * Plus what the claims need around it: lag sampling, a bare consumer over the same topics (the
 * throughput floor and the audit of what the topics carry), and a NULL-safe source ↔ target compare.
 */
import type { Admin, Kafka } from 'kafkajs';
import type { PgEngine } from '../engines/postgres/driver.ts';
import type { SqlEngine } from '../engines/types.ts';
import { keepSpares, startChild, stopSpares, type ChildJob, type CrashSpec } from '../engines/child.ts';
import type { CaptureConfig } from './capture.ts';
import type { ApplyConfig } from './apply-consumer.ts';
import type { ChangeEvent } from './envelope.ts';
import { decodeChangeEvent } from './debezium.ts';
import { InterruptedError } from '../errors.ts';
import { kafkaClient, readTopicsToEnd, topicEnds, type ReadMessage } from '../engines/kafka/admin.ts';
import { storedColumns } from '../engines/catalog.ts';

export { topicFor, CAPTURE_CRASH_POINT } from './capture.ts';
export { APPLY_CRASH_POINT, type ApplyImpl, type ApplyConfig } from './apply-consumer.ts';
export { applyBatch, WATERMARK_TABLE, type ApplyBatchFn, type ApplyBatchInput, type ApplyBatchResult } from './apply.ts';
export { makePortableTarget, openPortableTarget, type PortableTarget } from '../engines/portable.ts';
export type { ChildJob, CrashSpec };

const CAPTURE_MAIN = new URL('./capture-main.ts', import.meta.url).href;
const APPLY_MAIN = new URL('./apply-main.ts', import.meta.url).href;

export function startCapture(config: CaptureConfig, name = 'capture'): ChildJob {
  return startChild(name, CAPTURE_MAIN, config);
}

export function startApply(config: ApplyConfig, name = 'apply'): ChildJob {
  return startChild(name, APPLY_MAIN, config);
}

/**
 * Keep booted apply and capture processes waiting as a spare: starts and
 * restarts then skip the child's boot. `stopCdcSpares` ends them (register it with `engines.onStop`).
 */
export function keepCdcSpares(opts: { apply: number; capture: number }): void {
  keepSpares([APPLY_MAIN], opts.apply);
  keepSpares([CAPTURE_MAIN], opts.capture);
}

export { stopSpares as stopCdcSpares };

export { createTopics, kafkaClient } from '../engines/kafka/admin.ts';

/**
 * Removes dead members from their consumer groups at once — a LeaveGroup request on the member's
 * behalf, as a supervisor that saw the process die can send — instead of the group waiting for the
 * member's session to expire (≥ 1 s here) before a restarted apply may join. Nothing else changes:
 * the restart still resumes at the group's committed offsets. kafkajs has no public call for this
 * (KIP-345's removeMembersFromConsumerGroup serves only static members, which kafkajs lacks), so it
 * borrows kafkajs's own cluster and broker objects, connected once per run (a fresh connection
 * costs ~300 ms, most of what it saves). Best effort: `evict` resolves false when anything is
 * missing or refused (e.g. the session already expired); the session expiry then frees the partitions.
 */
export class GroupSupervisor {
  private cluster: Promise<SupervisorCluster | null> | null = null;

  constructor(private readonly brokers: string[]) {}

  async evict(groupId: string, memberId: string): Promise<boolean> {
    try {
      // A failed connect is forgotten, so the next eviction tries again rather than giving up for the run.
      const cluster = await (this.cluster ??= this.connect().catch((err) => {
        this.cluster = null;
        throw err;
      }));
      if (!cluster) return false;
      await (await cluster.findGroupCoordinator({ groupId })).leaveGroup({ groupId, memberId });
      return true;
    } catch {
      return false;
    }
  }

  /** A `Restarting` `beforeRestart` hook for an apply process: evicts the member the dead process last reported joining as. */
  evictDeadApply(groupId: string): (dead: ChildJob) => Promise<void> {
    return async (dead) => {
      const joined = [...dead.messages].reverse().find((m) => m.ev === 'joined' && typeof m.memberId === 'string');
      if (joined) await this.evict(groupId, String(joined.memberId));
    };
  }

  async close(): Promise<void> {
    const cluster = await this.cluster?.catch(() => null);
    this.cluster = null;
    await cluster?.disconnect().catch(() => undefined);
  }

  private async connect(): Promise<SupervisorCluster | null> {
    const kafka = kafkaClient(this.brokers, 'de-lab-cdc-supervisor');
    const key = Object.getOwnPropertySymbols(kafka).find((k) => k.description === 'private:Kafka:createCluster');
    const createCluster = key ? (kafka as unknown as Record<symbol, unknown>)[key] : undefined;
    if (typeof createCluster !== 'function') return null;
    const cluster = createCluster({ allowAutoTopicCreation: false }) as SupervisorCluster;
    await cluster.connect();
    return cluster;
  }
}

/** The part of kafkajs's internal Cluster the supervisor uses. */
interface SupervisorCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  findGroupCoordinator(a: { groupId: string }): Promise<{ leaveGroup(a: { groupId: string; memberId: string }): Promise<unknown> }>;
}

/**
 * The smallest session timeout the broker allows (`group.min.session.timeout.ms`), floored at
 * 1 s (the local broker's minimum): a SIGKILLed consumer keeps its partitions until its session expires, so this is how long
 * a restarted apply waits to rejoin.
 */
export async function consumerSessionTimeout(admin: Admin): Promise<number> {
  try {
    const { brokers } = await admin.describeCluster();
    const res = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: 4 /* BROKER */, name: String(brokers[0]!.nodeId), configNames: ['group.min.session.timeout.ms'] }],
    });
    const v = Number(res.resources[0]?.configEntries.find((e) => e.configName === 'group.min.session.timeout.ms')?.configValue);
    return Number.isFinite(v) && v > 0 ? Math.max(1000, v) : 6000;
  } catch {
    return 6000;
  }
}

// ---------------------------------------------------------------- lag

export interface LagSample {
  /** ms since the pipeline started. */
  t: number;
  /** Messages in the topics not yet committed by the apply group. */
  consumerLag: number;
  /** WAL bytes between the server's current position and what the slot has confirmed. */
  slotLagBytes: number;
}

export async function consumerLag(admin: Admin, groupId: string, topics: string[]): Promise<number> {
  const committed = await admin.fetchOffsets({ groupId, topics });
  let lag = 0;
  for (const topic of topics) {
    const high = await topicEnds(admin, topic);
    const mine = committed.find((c) => c.topic === topic)?.partitions ?? [];
    for (const p of high) {
      const c = Number(mine.find((m) => m.partition === p.partition)?.offset ?? -1);
      lag += Number(p.high) - Math.max(0, c);
    }
  }
  return lag;
}

export async function slotPosition(db: PgEngine, slot: string): Promise<{ confirmed: string | null; lagBytes: number }> {
  const [r] = await db.query<{ confirmed: string | null; lag: number | null }>(
    `SELECT confirmed_flush_lsn::text AS confirmed, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) AS lag FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  return { confirmed: r?.confirmed ?? null, lagBytes: Math.max(0, Number(r?.lag ?? 0)) };
}

/** WAL bytes from the slot's confirmed position up to `lsn` (0 once the slot has confirmed it). */
export async function slotBehind(db: PgEngine, slot: string, lsn: string): Promise<number> {
  const [r] = await db.query<{ behind: number | null }>(
    `SELECT GREATEST(0, pg_wal_lsn_diff($2::pg_lsn, confirmed_flush_lsn)) AS behind FROM pg_replication_slots WHERE slot_name = $1`,
    [slot, lsn],
  );
  return Number(r?.behind ?? Number.NaN);
}

/** Samples lag every `everyMs` until stopped. */
export function sampleLag(admin: Admin, db: PgEngine, groupId: string, topics: string[], slot: string, t0: number, everyMs = 200) {
  const samples: LagSample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const [consumer, s] = await Promise.all([consumerLag(admin, groupId, topics), slotPosition(db, slot)]);
        samples.push({ t: Date.now() - t0, consumerLag: consumer, slotLagBytes: s.lagBytes });
      } catch {
        /* a sample lost while a process restarts: the next one counts */
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    samples,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/**
 * Waits until the slot has confirmed `endLsn` (every source change is in Kafka) and the group has
 * committed every message (every change is in the target, when offsets follow the target commit).
 */
export async function waitCaughtUp(
  opts: {
    admin: Admin;
    source: PgEngine;
    slot: string;
    endLsn: string;
    groupId: string;
    topics: string[];
    timeoutMs: number;
    alive?: () => string | null;
    signal?: AbortSignal;
    /** What the consumer was last doing, for the stall message. */
    describe?: () => string;
  },
): Promise<void> {
  const stall = new StallClock(opts.timeoutMs);
  let last = '';
  for (;;) {
    if (opts.signal?.aborted) throw new InterruptedError('interrupted');
    const dead = opts.alive?.();
    if (dead) throw new Error(dead);
    const behind = await slotBehind(opts.source, opts.slot, opts.endLsn);
    const lag = behind === 0 ? await lagOrRetry(opts.admin, opts.groupId, opts.topics, stall.deadline) : Number.NaN;
    if (behind === 0 && lag === 0) return;
    stall.observe(behind, lag);
    last = `slot ${behind} bytes behind, consumer lag ${lag}`;
    if (stall.expired()) throw new Error(`cdc: not caught up: no progress for ${opts.timeoutMs} ms (${last}${opts.describe ? `; ${opts.describe()}` : ''})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A wait that fails when the pipeline stops moving, not when it is merely slow: a loaded machine
 * (or the Snowflake emulator) may take minutes, a stuck consumer makes no progress at all. The
 * clock restarts whenever the slot or the consumer lag reaches a new low; a hard cap of 10× the
 * stall time still ends a wait that creeps.
 */
class StallClock {
  private bestBehind = Infinity;
  private bestLag = Infinity;
  private progressAt = Date.now();
  private readonly cap: number;
  constructor(private readonly stallMs: number) {
    this.cap = Date.now() + 10 * stallMs;
  }
  observe(behind: number, lag: number): void {
    if (behind < this.bestBehind || (behind === 0 && lag < this.bestLag)) this.progressAt = Date.now();
    this.bestBehind = Math.min(this.bestBehind, behind);
    if (behind === 0 && !Number.isNaN(lag)) this.bestLag = Math.min(this.bestLag, lag);
  }
  get deadline(): number {
    return Math.min(this.cap, this.progressAt + this.stallMs);
  }
  expired(): boolean {
    return Date.now() > this.deadline;
  }
}

/** The group's lag; NaN (ask again) while the broker answers a retriable refusal, until the deadline. */
async function lagOrRetry(admin: Admin, groupId: string, topics: string[], deadline: number): Promise<number> {
  try {
    return await consumerLag(admin, groupId, topics);
  } catch (err) {
    if (!(err as { retriable?: boolean }).retriable || Date.now() > deadline) throw err;
    return Number.NaN;
  }
}

/** Waits until a group has committed every message of `topics` (no capture involved). */
export async function waitGroupDrained(admin: Admin, groupId: string, topics: string[], timeoutMs: number, alive?: () => string | null, signal?: AbortSignal): Promise<void> {
  const stall = new StallClock(timeoutMs);
  for (;;) {
    if (signal?.aborted) throw new InterruptedError('interrupted');
    const dead = alive?.();
    if (dead) throw new Error(dead);
    const lag = await lagOrRetry(admin, groupId, topics, stall.deadline);
    if (lag === 0) return;
    stall.observe(0, lag);
    if (stall.expired()) throw new Error(`cdc: group ${groupId} still ${lag} messages behind: no progress for ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------- the bare consumer: floor + audit

export interface TopicAudit {
  messages: number;
  events: number;
  byOp: Record<string, number>;
  tombstones: number;
  /** Deletes not immediately followed (in their partition) by a tombstone for the same key. */
  deletesWithoutTombstone: number;
  /** Events published more than once (same table, key and position): at-least-once redelivery. */
  duplicateEvents: number;
  /** `table:key` of rows that had ≥2 changes sharing one ts_ms. */
  sameTsKeys: string[];
  /** Messages per second of a consumer that only receives, from its group join to the last message (the floor for the pipeline). */
  rawEventsPerS: number;
  rawMs: number;
}

export async function auditTopics(kafka: Kafka, admin: Admin, groupId: string, topics: string[], timeoutMs: number): Promise<TopicAudit> {
  const read = await readTopicsToEnd(kafka, admin, topics, timeoutMs, groupId);
  const got = new Map<string, ReadMessage[]>();
  for (const m of read.messages) {
    const id = `${m.topic}/${m.partition}`;
    (got.get(id) ?? got.set(id, []).get(id)!).push(m);
  }
  const received = read.messages.length;
  // The audit proper, outside the timed part.
  const audit: TopicAudit = { messages: received, events: 0, byOp: {}, tombstones: 0, deletesWithoutTombstone: 0, duplicateEvents: 0, sameTsKeys: [], rawEventsPerS: 0, rawMs: read.lastAt - (read.joinedAt || read.firstAt) };
  const seen = new Set<string>();
  const tsByKey = new Map<string, Map<number, number>>();
  for (const [id, list] of got) {
    const topic = id.slice(0, id.lastIndexOf('/'));
    list.forEach((m, i) => {
      if (m.value === null) {
        audit.tombstones += 1;
        return;
      }
      const e = decodeChangeEvent(m.key, m.value);
      audit.events += 1;
      audit.byOp[e.op] = (audit.byOp[e.op] ?? 0) + 1;
      const pos = `${topic}|${m.key}|${e.op}|${e.source.commit_lsn}|${e.source.lsn}`;
      if (seen.has(pos)) audit.duplicateEvents += 1;
      seen.add(pos);
      if (e.op === 'd') {
        const next = list[i + 1];
        if (!next || next.value !== null || next.key !== m.key) audit.deletesWithoutTombstone += 1;
      }
      if (e.op !== 'r') {
        const k = `${e.schema.name}:${m.key}`;
        const ts = tsByKey.get(k) ?? new Map<number, number>();
        ts.set(e.source.ts_ms, (ts.get(e.source.ts_ms) ?? 0) + 1);
        tsByKey.set(k, ts);
      }
    });
  }
  for (const [k, ts] of tsByKey) if ([...ts.values()].some((n) => n >= 2)) audit.sameTsKeys.push(k);
  audit.rawEventsPerS = audit.rawMs > 0 ? (received / audit.rawMs) * 1000 : 0;
  return audit;
}

// ---------------------------------------------------------------- source ↔ target

export interface TableDiff {
  table: string;
  sourceRows: number;
  targetRows: number;
  missing: string[];
  extra: string[];
  differing: { key: string; source: string; target: string; /** The columns that differ, each as `col: source → target`. */ fields: string[] }[];
  duplicated: string[];
  /** Columns of the source the target lacks. */
  missingColumns: string[];
}

function canonical(v: unknown): string {
  if (v === null || v === undefined) return '∅';
  if (v instanceof Date) return v.toISOString();
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/**
 * Full, NULL-safe compare of one table: every source row must be in the target with equal values
 * (NULL equals NULL), and nothing else. Keys are the `table:{"id":17}` form used in messages.
 */
export async function compareTable(source: PgEngine, target: SqlEngine, table: string, key: string[]): Promise<TableDiff> {
  const described = await source.query<{ column_name: string; data_type: string }>(
    `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
    [table],
  );
  const cols = described.map((r) => r.column_name);
  // json/jsonb compare as the text the capture carries (pg would hand them over parsed: a JSON
  // `null` document would then read as SQL NULL, an object as "[object Object]").
  const asText = new Set(described.filter((r) => r.data_type === 'json' || r.data_type === 'jsonb').map((r) => r.column_name));
  const targetCols = await storedColumns(target, table, cols);
  const missingColumns = cols.filter((c) => !targetCols.has(c));
  const shared = cols.filter((c) => targetCols.has(c));
  const diff: TableDiff = { table, sourceRows: 0, targetRows: 0, missing: [], extra: [], differing: [], duplicated: [], missingColumns };
  if (targetCols.size === 0) {
    diff.sourceRows = (await source.query(`SELECT 1 FROM "${table}"`)).length;
    return diff;
  }
  const read = async (db: SqlEngine) => {
    const list = shared.map((c) => (db === source && asText.has(c) ? `CAST(${db.dialect.ident(c)} AS text) AS ${db.dialect.ident(c)}` : db.dialect.ident(c)));
    const rows = await db.query(`SELECT ${list.join(', ')} FROM ${db.dialect.ident(table)}`);
    const m = new Map<string, string[][]>();
    for (const r of rows) {
      const k = `${table}:${JSON.stringify(Object.fromEntries(key.map((c) => [c, r[c]])))}`;
      m.set(k, [...(m.get(k) ?? []), shared.map((c) => canonical(r[c]))]);
    }
    return { m, n: rows.length };
  };
  const show = (vals: string[]) => `{${shared.map((c, i) => `${c}: ${vals[i]}`).join(', ')}}`;
  const [src, tgt] = await Promise.all([read(source), read(target)]);
  diff.sourceRows = src.n;
  diff.targetRows = tgt.n;
  for (const [k, [v]] of src.m) {
    const t = tgt.m.get(k);
    if (!t) diff.missing.push(`${k} ${show(v!)}`);
    else if (t.length > 1) diff.duplicated.push(`${k} ×${t.length}`);
    else if (show(t[0]!) !== show(v!)) {
      const fields = shared.flatMap((c, i) => (v![i] !== t[0]![i] ? [`${c}: ${v![i]} → ${t[0]![i]}`] : []));
      diff.differing.push({ key: k, source: show(v!), target: show(t[0]!), fields });
    }
  }
  for (const [k, t] of tgt.m) if (!src.m.has(k)) diff.extra.push(`${k} ${show(t[0]!)}${t.length > 1 ? ` ×${t.length}` : ''}`);
  return diff;
}

export function diffIsEmpty(d: TableDiff): boolean {
  return d.missing.length + d.extra.length + d.differing.length + d.duplicated.length + d.missingColumns.length === 0;
}

/** The first difference, in one line, for a counterexample. */
export function firstDifference(diffs: readonly TableDiff[]): string | undefined {
  for (const d of diffs) {
    if (d.missingColumns.length) return `${d.table}: target lacks column(s) ${d.missingColumns.join(', ')}`;
    if (d.duplicated.length) return `${d.duplicated[0]} in the target (source has it once)`;
    if (d.differing.length) {
      const x = d.differing[0]!;
      // The differing fields first (source → target), then the whole source row for context.
      return `${x.key}: ${x.fields.join(', ')} (source → target; source row ${x.source})`;
    }
    if (d.missing.length) return `${d.missing[0]} is in the source, missing in the target`;
    if (d.extra.length) return `${d.extra[0]} is in the target, not in the source`;
  }
  return undefined;
}

// ---------------------------------------------------------------- restart policy

export interface ProcessEnd {
  process: string;
  pid: number;
  signal: string | null;
  code: number | null;
  /** The crash point it died at, when it killed itself at one. */
  crashPoint: string | null;
  at: number;
}

/**
 * Keeps one capture or apply process running, as an orchestrator would: when it dies (a crash
 * point, a SIGKILL from a test) it is started again — the restart gets no crash point. Every
 * message of every incarnation goes to `onMessage` listeners.
 */
export class Restarting {
  proc!: ChildJob;
  readonly ends: ProcessEnd[] = [];
  readonly messages: { pid: number; msg: import('../engines/child.ts').ChildMessage }[] = [];
  private stopping = false;
  private failure: string | null = null;
  private readonly listeners: ((m: import('../engines/child.ts').ChildMessage, pid: number) => void)[] = [];

  private readonly maxRestarts: number;
  private readonly beforeRestart?: (dead: ChildJob) => Promise<void>;

  /** `beforeRestart`: awaited between a death and the restart (e.g. `evictDeadApply`); its failure does not stop the restart. */
  constructor(
    readonly name: string,
    private readonly launch: (attempt: number) => ChildJob,
    opts: { maxRestarts?: number; beforeRestart?: (dead: ChildJob) => Promise<void> } = {},
  ) {
    this.maxRestarts = opts.maxRestarts ?? 3;
    this.beforeRestart = opts.beforeRestart;
    this.spawn(0);
  }

  private spawn(attempt: number): void {
    const proc = this.launch(attempt);
    this.proc = proc;
    proc.onMessage((m) => {
      this.messages.push({ pid: proc.pid, msg: m });
      for (const l of this.listeners) l(m, proc.pid);
    });
    void proc.exited.then((x) => {
      if (this.stopping) return;
      const crash = [...proc.messages].reverse().find((m) => m.ev === 'crash');
      this.ends.push({ process: this.name, pid: proc.pid, signal: x.signal, code: x.code, crashPoint: crash ? String(crash.point) : null, at: Date.now() });
      const failed = proc.messages.find((m) => m.ev === 'failed');
      if (failed) {
        // It reported an error (not a kill): the same input would fail the same way again.
        this.failure = `${this.name} failed: ${String(failed.error)}`;
        return;
      }
      if (this.ends.length > this.maxRestarts) {
        this.failure = `${this.name} died ${this.ends.length} times; last: ${proc.stderrTail()}`;
        return;
      }
      if (!this.beforeRestart) return this.spawn(attempt + 1);
      void this.beforeRestart(proc)
        .catch(() => undefined)
        .then(() => {
          if (!this.stopping) this.spawn(attempt + 1);
        });
    });
  }

  onMessage(fn: (m: import('../engines/child.ts').ChildMessage, pid: number) => void): void {
    this.listeners.push(fn);
  }

  /** null while healthy; why not, once it gave up restarting. */
  health(): string | null {
    return this.failure;
  }

  get restarts(): number {
    return this.ends.length;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.proc.stop();
  }
}
