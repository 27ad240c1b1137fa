/**
 * Events on Kafka in Avro: producers propose writer schemas v1 … vN to the registry (FULL,
 * transitive), each with a batch of records; then consumers on the oldest reader schema (v1) and
 * on the newest accepted one read the whole topic from the real broker. The evidence: what the
 * registry rule said for each proposal under each mode, what each produce attempt wrote (end
 * offsets before and after), and what each consumer decoded.
 */
import avro from 'avsc';
import type { Kafka } from 'kafkajs';
import type { LabContext, ClaimResult } from '../contract.ts';
import { kafkaClient, createTopics } from '../../pipelines/cdc/index.ts';
import { topicEnds } from '../../pipelines/engines/kafka/admin.ts';
import { compatibilityError, consumeWithReader, produceWithRegistry, SchemaRegistry, type AvroSchema, type CompatibilityMode } from '../../pipelines/schema-evolution/registry.ts';
import { EVENT_PROPOSALS, eventRecords, type SchemaProposal } from '../../fixtures/schema-evolution.ts';
import type { Prng } from '../../fixtures/prng.ts';

/** How a producer gets its records onto the topic under a writer schema (the reference registers first). */
export type ProduceFn = (kafka: Kafka, registry: SchemaRegistry, topic: string, schema: AvroSchema, records: readonly Record<string, unknown>[]) => Promise<number>;

export const REGISTRY_MODE = 'FULL' satisfies CompatibilityMode;
const MODES = ['BACKWARD', 'FORWARD', 'FULL'] as const;

export interface ProposalRun {
  name: string;
  what: string;
  /** Mode → [what the fixture expects, what the registry rule said]. */
  verdicts: Record<(typeof MODES)[number], [boolean, boolean]>;
  /** Messages the attempt wrote (end offset after − before). */
  written: number;
  attempted: number;
  /** The error the producer got (first line), if any. */
  error?: string;
  /** Offsets of its messages, and the records. */
  firstOffset: number;
  records: Record<string, unknown>[];
}

export interface ReaderRun {
  reader: string;
  schema: AvroSchema;
  messages: { offset: number; value: Record<string, unknown> | null; error?: string }[];
}

export interface EventEvidence {
  mode: CompatibilityMode;
  proposals: ProposalRun[];
  readers: ReaderRun[];
  /** Messages on the topic at the end. */
  total: number;
}

/** Topics of this process: each run (reference, pitfalls) gets its own. */
let topics = 0;

const typeOf = (s: AvroSchema) => avro.Type.forSchema(s as never);

/** Runs the proposals against a fresh topic on the real broker with `produce`, then the two consumers. */
export async function runEventScenario(ctx: LabContext, produce: ProduceFn, rng: Prng, perVersion: number): Promise<EventEvidence> {
  const { brokers } = await ctx.engines.kafka();
  const kafka = kafkaClient(brokers, 'de-lab-schema-evolution');
  const topic = ctx.engines.name(`schema_orders_${++topics}`);
  const admin = kafka.admin();
  await admin.connect();
  try {
    await createTopics(admin, [topic], 1);
    const end = async () => Number((await topicEnds(admin, topic))[0]!.high);
    const registry = new SchemaRegistry(REGISTRY_MODE);
    const accepted: SchemaProposal[] = [];
    const proposals: ProposalRun[] = [];
    let nextId = 1;
    for (const p of EVENT_PROPOSALS) {
      const verdicts = Object.fromEntries(
        MODES.map((m) => [m, [p.accepted[m], compatibilityError(m, typeOf(p.schema), accepted.map((a) => typeOf(a.schema))) === null]]),
      ) as ProposalRun['verdicts'];
      const records = eventRecords(rng.fork(p.name), p, perVersion, nextId);
      nextId += perVersion;
      const before = await end();
      let error: string | undefined;
      try {
        await produce(kafka, registry, topic, p.schema, records);
      } catch (err) {
        error = String((err as Error).message).split('\n')[0];
      }
      const written = (await end()) - before;
      if (p.accepted[REGISTRY_MODE]) accepted.push(p);
      proposals.push({ name: p.name, what: p.what, verdicts, written, attempted: records.length, firstOffset: before, records, ...(error ? { error } : {}) });
    }
    const total = await end();
    const readers: ReaderRun[] = [];
    for (const [reader, proposal] of [['v1 (oldest)', accepted[0]!], [`${accepted.at(-1)!.name} (newest)`, accepted.at(-1)!]] as const) {
      const messages = await consumeWithReader(kafka, registry, topic, ctx.engines.name(`${topic}_${readers.length}`), proposal.schema, total);
      readers.push({ reader, schema: proposal.schema, messages });
    }
    return { mode: REGISTRY_MODE, proposals, readers, total };
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}

export const defaultProduce: ProduceFn = produceWithRegistry;

/** What a reader should see for a record: each reader field from the record, else the reader's default. */
function projected(schema: AvroSchema, record: Record<string, unknown>): Record<string, unknown> | string {
  const out: Record<string, unknown> = {};
  for (const f of schema.fields as { name: string; default?: unknown }[]) {
    if (f.name in record) out[f.name] = record[f.name];
    else if ('default' in f) out[f.name] = f.default;
    else return `no ${f.name} in the data and no default`;
  }
  return out;
}

const fmt = (v: unknown) => JSON.stringify(v);

/** Claim 5: the registry rule is Avro's; an incompatible schema is refused before any message is written; every reader reads every message. */
export function registryCompatibility(ev: EventEvidence): ClaimResult {
  const rules: string[] = [];
  const leaks: string[] = [];
  const reads: string[] = [];
  let ruleDisagrees = 0;
  for (const p of ev.proposals) {
    for (const [mode, [want, got]] of Object.entries(p.verdicts)) {
      if (want !== got) {
        ruleDisagrees++;
        rules.push(`the registry rule says ${p.name} (${p.what}) is ${got ? 'accepted' : 'rejected'} under ${mode}; Avro's resolution rules say ${want ? 'accepted' : 'rejected'}`);
      }
    }
  }
  const shouldPass = (p: ProposalRun) => p.verdicts[REGISTRY_MODE][0];
  const rejected = ev.proposals.filter((p) => !shouldPass(p));
  let leaked = 0;
  for (const p of ev.proposals) {
    if (!shouldPass(p) && (p.written > 0 || !p.error)) {
      leaked += p.written;
      leaks.push(`${p.name} (${p.what}) is incompatible under ${ev.mode}, yet the producer ${p.error ? 'got an error but' : 'got no error and'} wrote ${p.written} messages (offsets ${p.firstOffset}…${p.firstOffset + p.written - 1})`);
    } else if (shouldPass(p) && p.written !== p.attempted) leaks.push(`${p.name} (${p.what}) is compatible, yet ${p.written} of ${p.attempted} messages were written: ${p.error ?? 'no error'}`);
  }
  // What was produced at each offset, whatever schema wrote it.
  const byOffset = new Map<number, { proposal: string; record: Record<string, unknown> }>();
  for (const p of ev.proposals) p.records.slice(0, p.written).forEach((record, i) => byOffset.set(p.firstOffset + i, { proposal: p.name, record }));
  const readFailures: Record<string, number> = {};
  for (const r of ev.readers) {
    let bad = 0;
    for (const m of r.messages) {
      const sent = byOffset.get(m.offset);
      const want = sent ? projected(r.schema, sent.record) : 'a message nobody produced';
      const ok = typeof want !== 'string' && m.value !== null && fmt(m.value) === fmt(want);
      if (!ok) {
        bad++;
        if (bad === 1) reads.push(`the ${r.reader} consumer at offset ${m.offset} (written as ${sent?.proposal ?? '?'}: ${fmt(sent?.record)}) ${m.error ? `failed: ${m.error}` : `read ${fmt(m.value)}`}`);
      }
    }
    if (r.messages.length !== ev.total) reads.push(`the ${r.reader} consumer read ${r.messages.length} of ${ev.total} messages`);
    readFailures[r.reader] = bad + (ev.total - r.messages.length);
  }
  // What a consumer suffered first (the consequence), then what got through, then the rule itself.
  const vs = [...reads, ...leaks, ...rules];
  return {
    passed: vs.length === 0,
    evidence: {
      mode: ev.mode,
      proposals: ev.proposals.length,
      rejected: rejected.map((p) => p.name).join(', '),
      rule_disagreements: ruleDisagrees,
      messages_from_rejected_schemas: leaked,
      messages: ev.total,
      ...Object.fromEntries(Object.entries(readFailures).map(([k, n]) => [`unreadable_for_${k.split(' ')[0]}`, n])),
    },
    ...(vs[0] ? { counterexample: vs[0] + (vs.length > 1 ? ` (+${vs.length - 1} more)` : '') } : {}),
  };
}
