/** What the scd2 lab prints and charts: tables of the run's evidence, the report's chart, the `--out` tables. */
import type { ChartSpec, PersistTarget } from '../contract.ts';
import type { ChangeKind } from '../../fixtures/scd2.ts';
import { OPEN_END } from '../../pipelines/scd2/index.ts';
import type { BenchEvidence, ScenarioEvidence } from './scenario.ts';

/** Per-day summary of what the source did and what the load did. */
export function dayTable(ev: ScenarioEvidence) {
  return ev.snapshots.map((s) => {
    const count = (k: ChangeKind) => ev.changes.filter((c) => c.date === s.date && c.kind === k).length;
    const rerun = ev.reruns.find((r) => r.date === s.date);
    return {
      date: s.date,
      keys: s.rows.length,
      new: count('new') + count('reappeared'),
      type2: count('type2'),
      type1_only: count('type1-only'),
      deleted: count('deleted'),
      opened: ev.dim.filter((r) => r.valid_from === s.date).length,
      closed: ev.dim.filter((r) => r.valid_to === s.date).length,
      rerun_same: rerun ? rerun.before.hash === rerun.after.hash && rerun.before.rows === rerun.after.rows : null,
    };
  });
}

/** A few keys worth looking at: one that came back after a delete, one with a NULL transition, the busiest. */
export function showcaseKeys(ev: ScenarioEvidence, n: number): number[] {
  const picked: number[] = [];
  const add = (id: number | undefined) => id !== undefined && !picked.includes(id) && picked.length < n && picked.push(id);
  add(ev.changes.find((c) => c.kind === 'reappeared')?.customer_id);
  const versions = new Map<number, number>();
  for (const r of ev.dim) versions.set(r.customer_id, (versions.get(r.customer_id) ?? 0) + 1);
  add(ev.dim.find((r) => r.segment === null && (versions.get(r.customer_id) ?? 0) > 1)?.customer_id);
  for (const [id] of [...versions.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])) add(id);
  return picked;
}

/** The versions of the first showcase key (empty when the dimension is). */
export function oneKeyTable(ev: ScenarioEvidence) {
  const id = showcaseKeys(ev, 1)[0];
  return ev.dim
    .filter((r) => r.customer_id === id)
    .map((r) => ({ sk: r.customer_sk, customer: r.customer_id, segment: r.segment, city: r.city, email: r.email, valid_from: r.valid_from, valid_to: r.valid_to === OPEN_END ? `${OPEN_END} (open)` : r.valid_to, current: r.is_current, deleted: r.is_deleted }));
}

export const benchTable = (b: BenchEvidence) => [{ snapshot_rows: b.snapshotRows, dim_rows: b.dimRows, apply_ms: Math.round(b.applyMs), create_table_as_ms: Math.round(b.loadMs), ratio: b.applyMs / b.loadMs }];

export function scd2Charts(ev: ScenarioEvidence): ChartSpec[] {
  return [
    {
      kind: 'timeline',
      id: 'scd2-versions',
      title: 'Versions per customer: [valid_from, valid_to), segment / city',
      rows: showcaseKeys(ev, 6).map((id) => ({
        label: `customer ${id}`,
        spans: ev.dim
          .filter((r) => r.customer_id === id)
          .map((r) => ({ from: r.valid_from, to: r.valid_to === OPEN_END ? null : r.valid_to, text: `${r.segment ?? '∅'} / ${r.city ?? '∅'}${r.is_deleted ? ' (deleted after)' : ''}` })),
      })),
    },
  ];
}

export async function persistScd2(ev: ScenarioEvidence, out: PersistTarget): Promise<void> {
  await out.table('scd2_dim_customer', ev.dim.map((r) => ({ ...r })));
  const skOf = new Map<number, number | null>();
  for (const r of ev.factJoin) if (!skOf.has(r.order_id)) skOf.set(r.order_id, r.customer_sk);
  await out.table('scd2_fact_orders', ev.orders.map((o) => ({ ...o, customer_sk: skOf.get(o.order_id) ?? null })));
  await out.table('scd2_source_snapshots', ev.snapshots.flatMap((snap) => snap.rows.map((r) => ({ snapshot_date: snap.date, ...r }))));
}
