import { requires, type ClaimResult, type Lab } from '../contract.ts';
import { Prng } from '../../fixtures/prng.ts';
import { dropPlan, writeDropFiles, type DropSpec } from '../../fixtures/schema-evolution.ts';
import { loadDropFile, type CompatibilityCheck, type DropFile } from '../../pipelines/schema-evolution/loader.ts';
import { compareWithSource, additiveFlows, breakingStopped, byName, schemaHistory, wideningLossless } from './claims.ts';
import { referenceImpl, runScenario, type SchemaEvolutionImpl, type ScenarioEvidence } from './scenario.ts';
import { schemaEvolutionPitfalls } from './pitfalls.ts';
import { benchmarkLoad, type LoadBenchmark } from './bench.ts';
import { lakeDialect } from '../../pipelines/schema-evolution/lake-dialect.ts';
import { cdcSourceCapture, cdcSourceChange, runCdcScenario, type CdcSchemaEvidence } from './cdc.ts';
import { gatedApply } from '../../pipelines/schema-evolution/cdc-source.ts';
import { defaultProduce, registryCompatibility, runEventScenario, REGISTRY_MODE, type EventEvidence } from './events.ts';

export interface SchemaEvolutionState {
  plan: DropSpec[];
  files: DropFile[];
  scenario?: ScenarioEvidence;
  events?: EventEvidence;
  cdc?: CdcSchemaEvidence;
  bench?: LoadBenchmark;
}

/** Rows per daily file: 1,000 at scale 1 (capped: order ids are day·100000 + n). */
export const rowsPerFile = (scale: number) => Math.max(20, Math.min(99_999, Math.round(1000 * scale)));
/** Events per accepted writer schema: 20 at scale 1. */
export const eventsPerVersion = (scale: number) => Math.max(3, Math.min(1000, Math.round(20 * scale)));

const claim = (fn: (ev: ScenarioEvidence) => ClaimResult) => requires<SchemaEvolutionState, 'scenario'>('scenario', fn);

/** Per file: what drifted, what the loader did. */
function fileTable(ev: ScenarioEvidence) {
  const { landed } = compareWithSource(ev);
  return ev.plan.map((spec) => {
    const run = ev.runs.find((r) => r.file === spec.name);
    return {
      file: spec.name,
      drift: spec.what,
      breaking: spec.breaking,
      outcome: run?.threw ? 'threw' : (run?.outcome?.status ?? '?'),
      rows: landed.get(spec.name) ?? 0,
      version: run?.outcome?.version ?? null,
      note: run?.threw ?? run?.outcome?.error ?? (run?.outcome?.changes ?? []).join('; '),
    };
  });
}

export const schemaEvolutionLab: Lab<SchemaEvolutionImpl, SchemaEvolutionState> = {
  id: 'schema-evolution',
  title: 'Schema evolution: additive drift flows in, breaking drift is stopped, nothing is shifted or truncated',
  question: 'How do you handle schema drift / schema evolution in production?',
  needs: ['postgres', 'kafka'],
  engines: ['duckdb', 'postgres'],
  reference: referenceImpl,
  pitfalls: schemaEvolutionPitfalls,
  newState: () => ({ plan: [], files: [] }),
  shared: [cdcSourceCapture],
  checkScale: (scale) => Math.min(scale, 0.25),
  steps: [
    {
      title: 'Write fifteen daily drops (Parquet, JSON, one CSV) whose schema drifts, seeded, with DuckDB COPY … TO',
      async run(ctx, _impl, state) {
        state.plan = dropPlan(new Prng(ctx.seed).fork('schema-evolution'), rowsPerFile(ctx.scale));
        const writer = await ctx.engines.duckdb();
        state.files = await writeDropFiles(writer, ctx.engines.tempDir('schema-drops'), state.plan);
        ctx.out.note(`${state.plan.length} files × ${state.plan[0]!.rows.length} rows; ${state.plan.filter((p) => p.breaking).length} carry a breaking change`);
      },
    },
    {
      title: 'Load each file in date order: read its schema, check it against the contract, evolve + load by name in one transaction, or quarantine',
      async run(ctx, impl, state) {
        const db = await ctx.engines.target(ctx.engine, 'schema_evolution');
        // A target that cannot read the files gets their rows from DuckDB, through the engine layer.
        const reader = lakeDialect(db).readsFiles ? db : await ctx.engines.duckdb();
        state.scenario = await runScenario(db, impl, state.plan, state.files, reader);
        ctx.out.table(fileTable(state.scenario), state.plan.length);
        for (const l of state.scenario.log.filter((x) => x.status === 'quarantined')) ctx.out.note(`quarantined — ${l.error}`);
      },
    },
    {
      title: 'The contract history: each version, the day it took effect, what changed',
      async run(ctx, _impl, state) {
        const ev = state.scenario!;
        ctx.out.table(ev.contract.map((c) => ({ version: c.version, effective: c.effective_date, file: c.effective_file, changes: c.changes })));
        const l = ev.lookups.find((x) => (x.version ?? 0) > 2);
        if (l) ctx.out.note(`which schema was order ${l.order_id} loaded under? v${l.version}, in effect since ${l.effective_date}: ${l.columns}`);
      },
    },
    {
      title: `Events on Kafka in Avro: writer schemas v1 … v7 proposed to the registry (${REGISTRY_MODE}), then consumers on the oldest and newest reader schemas`,
      async run(ctx, impl, state) {
        state.events = await runEventScenario(ctx, impl.produce ?? defaultProduce, new Prng(ctx.seed).fork('events'), eventsPerVersion(ctx.scale));
        const ev = state.events;
        ctx.out.table(ev.proposals.map((p) => ({ proposal: p.name, change: p.what, backward: p.verdicts.BACKWARD[1], forward: p.verdicts.FORWARD[1], full: p.verdicts.FULL[1], written: p.written, producer_error: (p.error ?? '').replace(/^schema rejected for \S+ under \w+: /, '') })));
        for (const r of ev.readers) ctx.out.note(`${r.reader} consumer: ${r.messages.filter((m) => m.value !== null).length}/${ev.total} messages decoded`);
      },
    },
    {
      title: 'A PostgreSQL source changes its table under the cdc capture (pgoutput → Kafka): ADD COLUMN, INTEGER → BIGINT, then RENAME, DROP and a retype; the apply holds each schema against the contract',
      async run(ctx, impl, state) {
        const db = await ctx.engines.target(ctx.engine, 'schema_evolution');
        state.cdc = await runCdcScenario(ctx, db, impl.applyChanges ?? referenceImpl.applyChanges!);
        const ev = state.cdc;
        ctx.out.table(ev.phases.map((p) => ({ phase: p.name, source_change: p.ddl ?? '(snapshot)', breaking: p.breaking, rows_touched: p.touched })));
        ctx.out.table(ev.schemas.map((s) => ({ event_schema: s.columns, events: s.events, applied: s.applied })));
        for (const s of ev.run?.stops ?? []) ctx.out.note(`stopped — ${s.line}; ${s.held} events left in Kafka`);
        if (ev.threw) ctx.out.note(`the apply failed: ${ev.threw}`);
      },
    },
    {
      title: 'Benchmark: the contract loader vs a plain INSERT … SELECT * FROM read_parquet of the same files',
      benchmarkOnly: true,
      async run(ctx, _impl, state) {
        state.bench = await benchmarkLoad(ctx);
        const b = state.bench;
        ctx.out.table([{ files: b.files, rows: b.rows, loader_ms: Math.round(b.loaderMs), plain_insert_ms: Math.round(b.copyMs), throughput_ratio: Math.round((b.copyMs / b.loaderMs) * 100) / 100 }]);
      },
    },
  ],
  claims: [
    {
      id: 'additive-flows',
      title: 'Additive changes flow',
      statement: 'An added nullable column (or struct field) appears in the table, NULL in the rows loaded before it and the file\'s values after; no load changes the rows already there (fingerprint of the old columns equal).',
      check: claim(additiveFlows),
    },
    {
      id: 'breaking-stopped',
      title: 'Breaking is stopped, not shifted',
      statement: 'A removed, renamed or incompatibly retyped column stops its file before any row lands, with one line naming file, column, old and new type; every other file lands whole; no file lands in part.',
      check: claim(breakingStopped),
    },
    {
      id: 'by-name',
      title: 'By name, never by position',
      statement: 'A file with its columns in another order (a reordered CSV header, two INTEGER columns swapped) loads every value into the column of its name.',
      check: claim(byName),
    },
    {
      id: 'widening-lossless',
      title: 'Widening is lossless',
      statement: 'INTEGER → BIGINT, DECIMAL(10,2) → (12,2), scale 2 → 4 and a struct gaining a field keep every value; every column ends at the widest exact type the producers sent; no loaded value differs from its file\'s.',
      check: claim(wideningLossless),
    },
    {
      id: 'registry-compatibility',
      title: 'Registry compatibility before produce',
      statement: `Under ${REGISTRY_MODE} (backward and forward, against every version), adding a field with a default is accepted and removing one with a default too; adding one without a default, removing one without, or changing a type is refused before a message is written; consumers on the oldest and the newest reader schema read every message on the topic.`,
      check: (s) => (s.events ? registryCompatibility(s.events) : { passed: false, evidence: {}, counterexample: 'the events scenario did not run' }),
    },
    {
      id: 'cdc-source-change',
      title: 'Through CDC, breaking is stopped too',
      statement:
        'ALTER TABLE at a PostgreSQL source under the cdc capture: an added column and an INTEGER → BIGINT widening reach the target with the next change; the first rename, drop or retype stops the apply at the first event under that schema, with one line naming table, column, old and new type; the target then equals the source as it was right before that change, and every event after it is still in Kafka, unapplied.',
      check: requires<SchemaEvolutionState, 'cdc'>('cdc', cdcSourceChange),
    },
    {
      id: 'schema-history',
      title: 'Schema history is queryable',
      statement: 'Each contract version is recorded with the day it took effect and its columns; each row names the version it was loaded under, and a join answers "which schema was this row loaded under".',
      check: claim(schemaHistory),
    },
  ],
  metrics: (s) => {
    const ev = s.scenario;
    const cmp = ev ? compareWithSource(ev) : undefined;
    return {
      schema_files: s.plan.length,
      schema_files_landed: ev ? ev.plan.filter((p) => (cmp!.landed.get(p.name) ?? 0) > 0).length : 0,
      schema_files_quarantined: ev ? ev.runs.filter((r) => r.outcome?.status === 'quarantined').length : 0,
      schema_values_changed: cmp?.mismatches.length ?? 0,
      schema_contract_versions: ev?.contract.length ?? 0,
      schema_registry_versions: s.events ? s.events.proposals.filter((p) => p.written > 0).length : 0,
      schema_registry_rejected: s.events ? s.events.proposals.filter((p) => p.error).length : 0,
      schema_events: s.events?.total ?? 0,
      schema_load_ms: Math.round(s.bench?.loaderMs ?? 0),
      schema_copy_ms: Math.round(s.bench?.copyMs ?? 0),
      // Throughput of the loader over that of the plain insert (target ≥ 0.7).
      schema_load_over_copy: s.bench ? Math.round((s.bench.copyMs / Math.max(s.bench.loaderMs, 0.001)) * 100) / 100 : 0,
    };
  },
  charts(s) {
    const ev = s.scenario;
    if (!ev) return [];
    const { landed } = compareWithSource(ev);
    return [{ kind: 'bar', id: 'schema-rows-per-file', title: 'Rows landed per daily file (breaking files: 0)', x: 'file', y: 'rows', series: [{ name: 'rows', points: ev.plan.map((p) => ({ x: p.name, y: landed.get(p.name) ?? 0 })) }] }];
  },
  async persist(s, out) {
    const ev = s.scenario;
    if (!ev) return;
    await out.table('schema_evolution_contract', ev.contract.map((c) => ({ ...c })));
    await out.table('schema_evolution_load_log', ev.log.map((l) => ({ ...l })));
    await out.table('schema_evolution_orders', ev.rows.map((r) => ({ _file: r._file, _contract_version: r._contract_version, ...r.values })));
  },
  exercise: {
    stub: 'labs/schema-evolution/exercise/stub.ts',
    solution: 'pipelines/schema-evolution/compat.ts',
    load(mod) {
      if (typeof mod.checkCompatibility !== 'function') throw new Error('export a function checkCompatibility(contract, incoming)');
      const check = mod.checkCompatibility as CompatibilityCheck;
      return { loadFile: (db, file, tables, _history, reader) => loadDropFile(db, file, tables, check, reader), applyChanges: gatedApply(check) } satisfies SchemaEvolutionImpl;
    },
    hints: [
      'Match by name: build a Map of the incoming columns by name and walk the contract\'s columns. A contract column the file lacks is breaking (removed — or renamed, if a new column of the same type turned up).',
      'Incoming columns the contract lacks are additive: append them to the contract (they will be nullable; the old rows read NULL).',
      'For a column in both, find the smallest type that holds every value of both (losslessSupertype): INTEGER + BIGINT → BIGINT; DECIMAL(10,2) + DECIMAL(12,2) → (12,2); DECIMAL(10,2) + DECIMAL(12,4) → (12,4) (keep the integer digits and the scale). No such type (INTEGER + VARCHAR, DECIMAL + DOUBLE) → breaking.',
      'Structs: compare their fields the same way, recursively, with the path `ship.zip` in messages. A new field widens the struct; a missing field is breaking.',
      'Return { compatible: true, contract, changes } with the contract the file should load under (same column order, new ones last), or { compatible: false, breaking: [{ column, from, to, reason, detail }] } — the loader turns the first into the one quarantine line.',
    ],
    nudges: {
      'additive-flows': 'A column in the file but not in the contract is additive: return it appended to the contract, and list it in changes.',
      'breaking-stopped': 'A contract column missing from the file, or a type with no lossless supertype, must come back compatible: false, naming the column, the contract type and the file type (`missing` when absent).',
      'by-name': 'Match incoming columns to the contract by name (a Map), never by index.',
      'widening-lossless': 'Widen to the smallest exact type that holds both (BIGINT, DECIMAL(max int digits + max scale, max scale)); never to DOUBLE or VARCHAR.',
      'registry-compatibility': 'Not your function: the events part uses the reference producer. If this fails, the broker or the registry check broke.',
      'cdc-source-change': 'The CDC apply calls your check with the target\'s columns and each event schema: a vanished column (status renamed to state) must come back compatible: false.',
      'schema-history': 'Report a change (changes non-empty) exactly when the contract grows or widens: each one becomes a contract version.',
    },
  },
};
