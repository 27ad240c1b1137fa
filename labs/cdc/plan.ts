/**
 * The workload of one cdc run, generated up front from the seed (same data, same order as
 * generating each phase when it runs): the capture's crash point is armed just past the streamed
 * phase's exact change count, and the apply's at a change no later phase touches.
 */
import { CdcWorkload, CHANGES_PER_SCALE, KEY, SOURCE_TABLES, type WorkloadItem } from '../../fixtures/cdc.ts';
import { topicFor } from '../../pipelines/cdc/index.ts';
import type { CapturePlan } from '../../pipelines/cdc/capture-source.ts';

export const PARTITIONS = 2;

/**
 * The phases: the streamed one (with the schema change half-way), and — for a live capture — a
 * short one the capture crashes in and the backlog the throughput is measured on.
 */
export function capturePlan(seed: number, scale: number, live: boolean): CapturePlan {
  const workload = new CdcWorkload(seed);
  const initialRows = workload.initialRows(scale);
  const stream = workload.phase(Math.round(CHANGES_PER_SCALE * scale), { schemaChangeAt: 0.5 });
  return {
    tables: SOURCE_TABLES,
    partitions: PARTITIONS,
    initialRows,
    stream,
    crash: live ? workload.phase(100) : [],
    backlog: live ? workload.phase(Math.round(CHANGES_PER_SCALE * scale)) : [],
    timeoutMs: 60000 + 2000 * scale,
  };
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
