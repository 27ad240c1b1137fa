/**
 * Real Debezium as the cdc lab's capture (`--capture debezium`): the PostgreSQL connector on a
 * Kafka Connect worker (pipelines/engines/debezium/provision.ts) writing the lab's topics; the
 * apply reads its envelope as it reads ours (pipelines/cdc/debezium.ts).
 *
 *  - Offsets: one file per run, kept outside the worker's temp dir, so a worker started again —
 *    after a SIGKILL or a clean stop — resumes where the last one had flushed.
 *  - "Caught up" is Debezium's own confirmation: its slot's confirmed_flush_lsn, which it advances
 *    when it flushes offsets — but only to the position of a change of its own tables. WAL written
 *    after the workload's last change (a DROP PUBLICATION, another database on the same server)
 *    would leave it behind the source's current LSN for good; so every heartbeat (200 ms) writes a
 *    row of a heartbeat table it captures too (`heartbeat.action.query`), and the slot moves on.
 *  - The crash point: Debezium has none inside it, so the lab makes one from outside — the worker
 *    is SIGKILLed as soon as its first write of the crash phase is visible in Kafka (acked:
 *    `acks=all`), long before its next offset flush (1 s) would confirm that position to the slot.
 *    The restarted worker resumes at the flushed offset and Postgres re-sends the rest: the
 *    duplicates the topic audit counts.
 */
import { join } from 'node:path';
import type { Admin } from 'kafkajs';
import { heartbeatTopic, startDebezium, type DebeziumCaptureConfig, type DebeziumWorker } from '../engines/debezium/provision.ts';
import { topicEnds } from '../engines/kafka/admin.ts';
import type { PgEngine } from '../engines/postgres/driver.ts';
import { CAPTURE_CRASH_POINT, topicFor, type ProcessEnd } from './index.ts';
import { runSideBySide } from './side-by-side.ts';
import type { CaptureKind, CaptureProcess } from './capture-source.ts';

const HEARTBEAT_MS = 200;
/** Written at each heartbeat (in the publication, its own topic): see `heartbeatActionQuery`. */
const HEARTBEAT_TABLE = 'de_lab_heartbeat';
const HEARTBEAT_SQL = `INSERT INTO ${HEARTBEAT_TABLE} (id, beat_at) VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET beat_at = EXCLUDED.beat_at`;

async function messageCount(admin: Admin, topics: readonly string[]): Promise<number> {
  let n = 0;
  for (const t of topics) for (const p of await topicEnds(admin, t)) n += Number(p.high);
  return n;
}

/** Until the slot has no walsender attached: a restarted connector cannot take a slot still held by the killed one's connection. */
async function slotReleased(source: PgEngine, slot: string, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [r] = await source.query<{ active: boolean }>(`SELECT active FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
    if (!r?.active || Date.now() > deadline) return;
    await new Promise((res) => setTimeout(res, 50));
  }
}

export function debeziumCapture(env: NodeJS.ProcessEnv, offsetsDir: () => string, log: (m: string) => void = () => undefined): CaptureKind {
  const offsetsFiles = new Map<string, string>();
  return {
    name: 'debezium',
    spares: 0,
    start(o, plan, _opts): CaptureProcess {
      // One offsets file per slot: every worker of this capture resumes from it.
      const offsetsFile = offsetsFiles.get(o.names.slot) ?? join(offsetsDir(), `${o.names.slot}.offsets`);
      offsetsFiles.set(o.names.slot, offsetsFile);
      const cfg: DebeziumCaptureConfig = {
        brokers: o.brokers,
        pgUrl: o.sourceUrl,
        slot: o.names.slot,
        publication: o.names.publication,
        tables: [...plan.tables, `public.${HEARTBEAT_TABLE}`],
        topicPrefix: o.names.topicPrefix,
        offsetsFile,
        heartbeatMs: HEARTBEAT_MS,
        heartbeatActionQuery: HEARTBEAT_SQL,
      };
      const ends: ProcessEnd[] = [];
      let failure: string | null = null;
      let stopping = false;
      let worker: Promise<DebeziumWorker> = o.source
        .exec(`CREATE TABLE IF NOT EXISTS ${HEARTBEAT_TABLE} (id INTEGER PRIMARY KEY, beat_at TIMESTAMPTZ NOT NULL)`)
        .then(() => startDebezium(cfg, env, log));
      worker.catch((err) => void (failure = `Debezium failed: ${(err as Error).message}`));
      let pid: number | null = null;
      void worker.then((w) => void (pid = w.pid ?? null)).catch(() => undefined);
      let crashWatch: Promise<void> | null = null;
      const initialRows = plan.initialRows.customers.length + plan.initialRows.orders.length;
      return {
        async ready() {
          await worker;
          // The snapshot is done when its rows are in Kafka (a resumed worker has sent them before).
          const deadline = Date.now() + 60000;
          while ((await messageCount(o.admin, o.names.topics)) < initialRows) {
            if (Date.now() > deadline) throw new Error(`Debezium: the snapshot's ${initialRows} rows not in Kafka after 60 s`);
            await new Promise((r) => setTimeout(r, 25));
          }
          return initialRows;
        },
        pid: () => pid,
        ends,
        health: () => failure,
        armCrash() {
          crashWatch = (async () => {
            const w = await worker;
            const base = await messageCount(o.admin, o.names.topics);
            while (!stopping && (await messageCount(o.admin, o.names.topics)) === base) await new Promise((r) => setTimeout(r, 2));
            if (stopping || w.pid === undefined) return;
            process.kill(w.pid, 'SIGKILL');
            ends.push({ process: 'capture', pid: w.pid, signal: 'SIGKILL', code: null, crashPoint: CAPTURE_CRASH_POINT, at: Date.now() });
            await w.stop().catch(() => undefined);
            await slotReleased(o.source, o.names.slot);
            if (stopping) return;
            worker = startDebezium(cfg, env, log);
            worker.catch((err) => void (failure = `Debezium failed after its restart: ${(err as Error).message}`));
            pid = (await worker).pid ?? null;
          })().catch((err) => void (failure = `Debezium crash test: ${(err as Error).message}`));
        },
        async stop() {
          stopping = true;
          await crashWatch;
          await (await worker.catch(() => null))?.stop();
        },
      };
    },
    async close(o) {
      await o.admin.deleteTopics({ topics: [heartbeatTopic(o.names.topicPrefix), topicFor(o.names.topicPrefix, `public.${HEARTBEAT_TABLE}`)] }).catch(() => undefined);
    },
    async compareOnBacklog(deps, o, commit) {
      const s = await runSideBySide({ engines: deps.engines, source: o.source, sourceUrl: o.sourceUrl, tables: deps.plan.tables, partitions: deps.plan.partitions, workload: commit, log });
      return s.timing.debezium.eventsPerS > 0 ? Number((s.timing.ours.eventsPerS / s.timing.debezium.eventsPerS).toFixed(3)) : 0;
    },
  };
}
