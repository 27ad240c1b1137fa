/**
 * The CDC part of the schema-evolution lab: `ALTER TABLE` on a PostgreSQL source under the cdc
 * pipeline's capture (pgoutput → Kafka), then the candidate's apply into the target. The capture
 * runs once per engine set, seed and scale; every implementation (reference, pitfalls) applies the
 * same topic into a fresh target table.
 */
import { randomBytes } from 'node:crypto';
import type { ClaimResult, LabContext, SharedFixture } from '../contract.ts';
import type { Engines } from '../../pipelines/engines/index.ts';
import type { SqlEngine } from '../../pipelines/engines/types.ts';
import { Prng } from '../../fixtures/prng.ts';
import { CDC_SOURCE_TABLE, sourceChangePlan, type SourcePhase } from '../../fixtures/schema-evolution-cdc.ts';
import { captureSourceChanges, readTarget, schemaRuns, type CapturedSource, type CdcApplyFn, type GatedApplyRun } from '../../pipelines/schema-evolution/cdc-source.ts';
import { errorLine } from '../../pipelines/errors.ts';

/** Source rows: 200 at scale 1 and below (check scale shares the default run's capture). */
export const cdcSourceRows = (scale: number) => Math.max(200, Math.min(5000, Math.round(200 * scale)));

export interface CdcSchemaEvidence {
  phases: SourcePhase[];
  table: string;
  /** Per schema the topic carried, in order: its columns, its events, how many the apply applied. */
  schemas: { columns: string; events: number; applied: number }[];
  events: number;
  /** Events written under a schema without the column the first breaking change took away. */
  eventsAfterBreaking: number;
  run?: GatedApplyRun;
  threw?: string;
  expected: Map<string, Record<string, string | null>>;
  expectedColumns: string[];
  target: Map<string, Record<string, string | null>>;
  targetColumns: string[];
}

/** Per engine set, capture and target engine: the evidence of each apply function (pitfalls that keep the reference's apply share its run). */
const applied = new WeakMap<Engines, Map<string, Map<CdcApplyFn, Promise<CdcSchemaEvidence>>>>();

/** The source changed under the capture, with the topic read back: made once per engine set, seed and size. */
export const cdcSourceCapture: SharedFixture<{ captured: CapturedSource; phases: SourcePhase[] }> = {
  id: 'schema-evolution-cdc-source',
  key: (p) => `${p.seed}|${cdcSourceRows(p.scale)}`,
  async make({ seed, scale, engines }) {
    const phases = sourceChangePlan(new Prng(seed), cdcSourceRows(scale));
    const sourceUrl = await engines.freshPgDatabase('se_cdc_source');
    const source = await engines.pg(sourceUrl, 'se_cdc_source');
    const { brokers } = await engines.kafka();
    const suffix = randomBytes(2).toString('hex');
    const names = { topicPrefix: engines.name(`se${suffix}`), slot: engines.name(`se_slot_${suffix}`), publication: engines.name(`se_pub_${suffix}`) };
    // The capture process, slot, publication and topic go with the engines (registered before the capture starts: a failed make leaves nothing).
    const captured = await captureSourceChanges({ source, sourceUrl, brokers, names, partitions: 3, signal: new AbortController().signal, onStop: (fn) => engines.onStop(fn) }, CDC_SOURCE_TABLE, phases);
    return { captured, phases };
  },
};

/** Captures (once) and applies with `apply` (once per apply function) into a fresh table of `target`. */
export function runCdcScenario(ctx: LabContext, target: SqlEngine, apply: CdcApplyFn): Promise<CdcSchemaEvidence> {
  let byKey = applied.get(ctx.engines);
  if (!byKey) applied.set(ctx.engines, (byKey = new Map()));
  const key = `${ctx.seed}|${cdcSourceRows(ctx.scale)}|${target.name}`;
  let byFn = byKey.get(key);
  if (!byFn) byKey.set(key, (byFn = new Map()));
  let made = byFn.get(apply);
  if (!made) {
    made = applyOnce(ctx, target, apply);
    byFn.set(apply, made);
    made.catch(() => byFn!.delete(apply));
  }
  return made;
}

async function applyOnce(ctx: LabContext, target: SqlEngine, apply: CdcApplyFn): Promise<CdcSchemaEvidence> {
  const { captured, phases } = await ctx.shared(cdcSourceCapture);
  const table = `se_cdc_${randomBytes(3).toString('hex')}`;
  const ev: CdcSchemaEvidence = {
    phases,
    table,
    schemas: [],
    events: 0,
    eventsAfterBreaking: 0,
    expected: captured.beforeBreaking,
    expectedColumns: captured.columnsBeforeBreaking,
    target: new Map(),
    targetColumns: [],
  };
  try {
    ev.run = await apply(target, table, captured.messages);
  } catch (err) {
    ev.threw = errorLine(err);
  }
  const runs = schemaRuns(captured.messages);
  const stoppedAt = new Map((ev.run?.stops ?? []).map((s) => [s.partition, s.offset]));
  for (const r of runs) {
    const columns = r.events[0]!.schema.columns.map((c) => `${c.name} ${c.type}`).join(', ');
    let s = ev.schemas.find((x) => x.columns === columns);
    if (!s) ev.schemas.push((s = { columns, events: 0, applied: 0 }));
    s.events += r.events.length;
    ev.events += r.events.length;
    const stop = stoppedAt.get(r.partition);
    if (ev.run && !ev.threw && (stop === undefined || r.offset < stop)) s.applied += r.events.length;
    // The first breaking change renames status: every event after it lacks the column.
    if (!r.events[0]!.schema.columns.some((c) => c.name === 'status')) ev.eventsAfterBreaking += r.events.length;
  }
  const read = await readTarget(target, table);
  ev.target = read.rows;
  ev.targetColumns = read.columns;
  return ev;
}

/** The first difference between the expected table and the target, in one line; undefined: none. */
function firstDifference(ev: CdcSchemaEvidence): string | undefined {
  const extraCols = ev.targetColumns.filter((c) => !ev.expectedColumns.includes(c));
  const missingCols = ev.expectedColumns.filter((c) => !ev.targetColumns.includes(c));
  if (missingCols.length || extraCols.length) {
    const shifted = extraCols.length ? [...ev.target.values()].find((r) => extraCols.some((c) => r[c] !== null)) : undefined;
    return `the target's columns are (${ev.targetColumns.join(', ')}), the source's before the first breaking change (${ev.expectedColumns.join(', ')})${
      shifted ? `: order ${shifted.order_id} has ${extraCols.map((c) => `${c} = ${shifted[c] ?? 'NULL'}`).join(', ')} beside ${missingCols.length ? missingCols.map((c) => `${c}`).join(', ') : `status = ${shifted.status ?? 'NULL'}`}` : ''
    }`;
  }
  for (const [k, want] of ev.expected) {
    const got = ev.target.get(k);
    if (!got) return `order ${k} is in the source, not in the target`;
    const diff = ev.expectedColumns.filter((c) => (want[c] ?? null) !== (got[c] ?? null));
    if (diff.length) return `order ${k}: ${diff.map((c) => `${c} ${want[c] ?? 'NULL'} → ${got[c] ?? 'NULL'}`).join(', ')} (source before the breaking change → target)`;
  }
  for (const k of ev.target.keys()) if (!ev.expected.has(k)) return `order ${k} is in the target, not in the source before the breaking change`;
  return undefined;
}

/** Claim: through CDC, additive changes flow, the first breaking one stops the apply, nothing shifts. */
export function cdcSourceChange(ev: CdcSchemaEvidence): ClaimResult {
  const stops = ev.run?.stops ?? [];
  const held = stops.reduce((n, s) => n + s.held, 0);
  const evidence = {
    source_changes: ev.phases.filter((p) => p.ddl).map((p) => `${p.name}${p.breaking ? ' (breaking)' : ''}`).join(', '),
    events: ev.events,
    applied: ev.run?.applied ?? 0,
    held_in_kafka: held,
    events_after_breaking: ev.eventsAfterBreaking,
    contract_changes: (ev.run?.changes ?? []).join('; '),
    stop: stops[0]?.line ?? null,
  };
  const diff = firstDifference(ev);
  if (ev.threw) return { passed: false, evidence, counterexample: `the apply failed: ${ev.threw}${diff ? `; by then ${diff}` : ''}` };
  if (stops.length === 0) return { passed: false, evidence, counterexample: `no stop: all ${ev.run?.applied ?? 0} events applied through the rename, the drop and the retype; ${diff ?? 'the target matches by chance'}` };
  const first = stops[0]!.breaking[0];
  if (!first || first.column !== 'status') return { passed: false, evidence, counterexample: `the apply stopped, but not at the rename of status: ${stops[0]!.line}` };
  if (diff) return { passed: false, evidence, counterexample: diff };
  if (held !== ev.eventsAfterBreaking) return { passed: false, evidence, counterexample: `${held} events held in Kafka, ${ev.eventsAfterBreaking} were written after the first breaking change` };
  return { passed: true, evidence };
}
