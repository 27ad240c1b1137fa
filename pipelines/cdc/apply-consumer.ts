/**
 * The apply process's loop: a Kafka consumer group hands over micro-batches (one per
 * topic-partition fetch); each goes through `applyBatch` (one MERGE, one target transaction) and
 * only then are its offsets committed. Offsets are the consumer's bookmark, the watermark in the
 * target is the truth: after a crash between the two, the batch comes again and is skipped.
 */
import { heartbeating, kafkaClient, runInGroup } from '../engines/kafka/admin.ts';
import { crashPoint, send, type CrashSpec } from '../engines/child.ts';
import { openPortableTarget, type PortableTarget } from '../engines/portable.ts';
import { TargetSchema, batchSchema, type ApplyBatchFn } from './apply.ts';
import type { ChangeEvent } from './envelope.ts';
import { decodeChangeEvent } from './debezium.ts';
import type { SqlEngine } from '../engines/types.ts';

/** How an implementation applies: which function, and when offsets are committed. Serializable (crosses a process boundary). */
export interface ApplyImpl {
  /** File URL of a module exporting the batch apply function. */
  applyModule: string;
  /** Its export name (default `applyBatch`). */
  applyExport?: string;
  /** `after-target-commit` (correct) or `before-apply` (the pitfall). */
  commitOffsets: 'after-target-commit' | 'before-apply';
}

export interface ApplyConfig {
  brokers: string[];
  groupId: string;
  topics: string[];
  target: PortableTarget;
  impl: ApplyImpl;
  /** `apply:between-commits`: die between the target commit and the offset commit (whichever order the impl uses). */
  crash?: CrashSpec;
  /** Smaller = more, smaller batches (crash tests want many). */
  maxBytesPerPartition?: number;
  sessionTimeout?: number;
  /**
   * Target sessions of this apply's killed predecessors (engines with `dialect.sessions`): aborted
   * before consuming, so a transaction a kill left open releases its locks.
   */
  abortSessions?: string[];
}

export const APPLY_CRASH_POINT = 'apply:between-commits';

export async function loadApplyFn(impl: ApplyImpl): Promise<ApplyBatchFn> {
  const mod = (await import(impl.applyModule)) as Record<string, unknown>;
  const fn = mod[impl.applyExport ?? 'applyBatch'];
  if (typeof fn !== 'function') throw new Error(`${impl.applyModule} does not export a function ${impl.applyExport ?? 'applyBatch'}`);
  return fn as ApplyBatchFn;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * On an engine where a killed writer's transaction outlives it (Snowflake), end the predecessors'
 * sessions first — else the restart's MERGE waits on (or conflicts with) their locks — then
 * report this session's id, for whoever restarts this process.
 */
async function clearDeadSessions(db: SqlEngine, ids: string[]): Promise<void> {
  const control = db.dialect.sessions;
  if (!control) return;
  for (const id of ids) {
    const [row] = await db.query<Record<string, unknown>>(control.abort(id)).catch((err: unknown) => [{ error: String(err) }]);
    send({ ev: 'target-session-aborted', id, result: String(Object.values(row ?? {})[0] ?? '') });
  }
  const [row] = await db.query<Record<string, unknown>>(control.current);
  send({ ev: 'target-session', id: String(Object.values(row ?? {})[0]) });
}

export const LATENCY_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, Infinity];

export async function runApply(cfg: ApplyConfig, signal: AbortSignal): Promise<void> {
  const applyFn = await loadApplyFn(cfg.impl);
  const db = await openPortableTarget(cfg.target, { applicationName: 'de-lab-cdc-apply' });
  await clearDeadSessions(db, cfg.abortSessions ?? []);
  const schema = new TargetSchema(db);
  await schema.ensureWatermarkTable();
  const kafka = kafkaClient(cfg.brokers, 'de-lab-cdc-apply');
  const sessionTimeout = cfg.sessionTimeout ?? 6000;
  const heartbeatInterval = Math.max(100, Math.floor(sessionTimeout / 5));
  const consumer = kafka.consumer({
    groupId: cfg.groupId,
    sessionTimeout,
    heartbeatInterval,
    rebalanceTimeout: Math.max(sessionTimeout, 5000),
    maxBytesPerPartition: cfg.maxBytesPerPartition ?? 1048576,
    // A long poll: new data returns a fetch at once; an idle consumer asks the broker 4x a second, not 20x.
    maxWaitTimeInMs: 250,
  });
  const latencies: number[] = [];
  let firstCommitTs = Infinity;
  let lastVisible = 0;
  let received = 0;
  let fresh = 0;
  let failure: Error | null = null;
  let wake: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (wake = resolve));
  signal.addEventListener('abort', () => wake(), { once: true });
  let rejoins = 0;
  let runConfig: Parameters<typeof consumer.run>[0] = {};
  try {
    await consumer.connect();
    for (const topic of cfg.topics) await consumer.subscribe({ topic, fromBeginning: true });
    consumer.on(consumer.events.GROUP_JOIN, (e) => send({ ev: 'joined', t: Date.now(), memberId: e.payload.memberId }));
    runConfig = {
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (!isRunning() || isStale() || batch.messages.length === 0) return;
        const events: ChangeEvent[] = [];
        let tombstones = 0;
        for (const m of batch.messages) {
          if (m.value === null) tombstones += 1;
          else events.push(decodeChangeEvent(m.key, m.value)); // our envelope, or real Debezium's
        }
        const next = (BigInt(batch.lastOffset()) + 1n).toString();
        const commitOffsets = () => consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }]);
        let result = { received: events.length, fresh: 0, merged: 0 };
        let visibleAt = 0;
        const apply = async () => {
          if (events.length === 0) return;
          // A slow target (Snowflake, a loaded machine) must not outlast the session mid-batch.
          await heartbeating(heartbeat, heartbeatInterval, async () => {
            const table = batchSchema(events);
            await schema.ensureTable(table);
            result = await applyFn(db, { topic: batch.topic, partition: batch.partition, table, events });
            visibleAt = Date.now();
          });
        };
        // An apply that throws would throw again on the same batch: fail now (kafkajs would retry,
        // then restart the consumer, for ever), offsets not committed.
        const applyOrFail = () =>
          apply().catch((err: unknown) => {
            failure ??= err instanceof Error ? err : new Error(String(err));
            wake();
            throw err;
          });
        received += events.length;
        // Keyed crash point: only the batch that carries that key's change arms it.
        const k = cfg.crash?.key;
        const armed = !k || (batch.topic === k.topic && batch.messages.some((m) => m.value !== null && m.key?.toString() === k.key));
        const between = () => armed && crashPoint(cfg.crash, APPLY_CRASH_POINT, received, { offset: next, topic: batch.topic, partition: batch.partition });
        if (cfg.impl.commitOffsets === 'before-apply') {
          await commitOffsets();
          between();
          await applyOrFail();
        } else {
          await applyOrFail();
          between();
          await commitOffsets();
        }
        resolveOffset(batch.lastOffset());
        fresh += result.fresh;
        const lat: number[] = [];
        if (result.fresh > 0) {
          // Latency = visible in the target − committed at the source, for streamed changes.
          for (const e of events) {
            if (e.op === 'r') continue;
            lat.push(visibleAt - e.source.ts_ms);
            if (e.source.ts_ms < firstCommitTs) firstCommitTs = e.source.ts_ms;
          }
          latencies.push(...lat);
          lastVisible = visibleAt;
        }
        send({ ev: 'batch', topic: batch.topic, partition: batch.partition, offset: next, tombstones, ...result, t: visibleAt || Date.now(), lat });
        await heartbeat();
      },
    };
    await runInGroup(consumer, runConfig, {
      what: 'the apply consumer',
      // The batch in flight had not committed its offsets, so it comes again and the watermark skips it.
      onRejoin: (err) => (rejoins++, send({ ev: 'rejoin', t: Date.now(), error: String((err as Error).message ?? err) })),
      fail: (err) => ((failure ??= err), wake()),
      stopping: () => signal.aborted,
    });
    await done;
    if (failure) throw failure;
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await db.close().catch(() => undefined);
  }
  latencies.sort((a, b) => a - b);
  const histogram = LATENCY_BUCKETS_MS.map((le, i) => ({
    le: Number.isFinite(le) ? le : null,
    count: latencies.filter((l) => l <= le && (i === 0 || l > LATENCY_BUCKETS_MS[i - 1]!)).length,
  }));
  send({
    ev: 'stats',
    received,
    fresh,
    rejoins,
    streamed: latencies.length,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    firstCommitTs: Number.isFinite(firstCommitTs) ? firstCommitTs : null,
    lastVisible: lastVisible || null,
    histogram,
  });
}
