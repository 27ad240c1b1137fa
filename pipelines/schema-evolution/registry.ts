/**
 * Avro events on Kafka with a schema registry, in-process. A real registry (Apicurio Registry,
 * through its Confluent-compatible API) cannot run here: its app on Maven Central is a Quarkus
 * application jar that needs a Quarkus build over its dependency tree, and that tree includes
 * io.apicurio:apicurio-registry-schema-util-provider, which Maven Central does not serve (2.6.13.Final
 * and 3.3.3 both answer "Could not find artifact"). So the registry's job — one subject, its
 * versions, the compatibility rule checked before a schema gets an id — is done here with avsc's
 * resolvers, which implement Avro's schema resolution (what a reader can make of a writer's data).
 *
 * Compatibility, as the Confluent registry defines it (all "transitive": against every version):
 *   BACKWARD  the new schema can read data written with every older one (consumers upgrade first)
 *   FORWARD   every older schema can read data written with the new one (producers upgrade first)
 *   FULL      both
 *
 * Messages use the registry wire format: a 0 byte, the schema id (4 bytes, big-endian), the Avro
 * binary. A consumer looks the writer schema up by id and resolves it to its own reader schema.
 */
import avro from 'avsc';
import type { Type } from 'avsc';
import type { Kafka } from 'kafkajs';

export type CompatibilityMode = 'BACKWARD' | 'FORWARD' | 'FULL' | 'NONE';

/** An Avro schema as JSON (a record). */
export type AvroSchema = Record<string, unknown>;

export class IncompatibleSchemaError extends Error {
  constructor(
    readonly subject: string,
    readonly mode: CompatibilityMode,
    readonly reason: string,
  ) {
    super(`schema rejected for ${subject} under ${mode}: ${reason}`);
    this.name = 'IncompatibleSchemaError';
  }
}

/** Why `reader` cannot read what `writer` wrote (null: it can). */
export function resolutionError(reader: Type, writer: Type): string | null {
  try {
    reader.createResolver(writer);
    return null;
  } catch (err) {
    return String((err as Error).message).split('\n')[0]!;
  }
}

/** Whether `next` may follow `previous` (oldest first) under `mode`: null, or why not. */
export function compatibilityError(mode: CompatibilityMode, next: Type, previous: readonly Type[]): string | null {
  for (const [i, old] of previous.entries()) {
    if (mode === 'BACKWARD' || mode === 'FULL') {
      const e = resolutionError(next, old);
      if (e) return `the new schema cannot read data written with version ${i + 1}: ${e}`;
    }
    if (mode === 'FORWARD' || mode === 'FULL') {
      const e = resolutionError(old, next);
      if (e) return `version ${i + 1} cannot read data written with the new schema: ${e}`;
    }
  }
  return null;
}

interface Version {
  id: number;
  version: number;
  type: Type;
  fingerprint: string;
}

/** Subjects, their versions and global schema ids; the compatibility rule is checked on register. */
export class SchemaRegistry {
  private nextId = 1;
  private readonly subjects = new Map<string, Version[]>();
  private readonly byId = new Map<number, Type>();

  constructor(readonly mode: CompatibilityMode) {}

  /**
   * Registers `schema` under `subject` (the same schema again returns its id), or throws
   * IncompatibleSchemaError. `check: false` registers without the compatibility check (what a
   * subject set to NONE, or a producer that skips the check, gets).
   */
  register(subject: string, schema: AvroSchema, opts: { check?: boolean } = {}): number {
    const type = avro.Type.forSchema(schema as never);
    const fingerprint = type.fingerprint('sha256').toString('hex');
    const versions = this.subjects.get(subject) ?? [];
    const same = versions.find((v) => v.fingerprint === fingerprint);
    if (same) return same.id;
    if (this.mode !== 'NONE' && opts.check !== false) {
      const why = compatibilityError(this.mode, type, versions.map((v) => v.type));
      if (why) throw new IncompatibleSchemaError(subject, this.mode, why);
    }
    const v: Version = { id: this.nextId++, version: versions.length + 1, type, fingerprint };
    this.subjects.set(subject, [...versions, v]);
    this.byId.set(v.id, type);
    return v.id;
  }

  /** The latest version's id (what a producer configured with "use latest" would stamp). */
  latestId(subject: string): number | undefined {
    return this.subjects.get(subject)?.at(-1)?.id;
  }

  versions(subject: string): number {
    return this.subjects.get(subject)?.length ?? 0;
  }

  schemaById(id: number): Type {
    const t = this.byId.get(id);
    if (!t) throw new Error(`no schema with id ${id}`);
    return t;
  }
}

/** The registry wire format: magic 0, 4-byte schema id, Avro binary. */
export function frame(id: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(id, 1);
  return Buffer.concat([head, payload]);
}

export function unframe(message: Buffer): { id: number; payload: Buffer } {
  if (message.length < 5 || message.readUInt8(0) !== 0) throw new Error('not in the registry wire format (magic byte)');
  return { id: message.readUInt32BE(1), payload: message.subarray(5) };
}

/** Sends `records` encoded with the writer `schema`, each framed with schema id `id`, keyed by order id. */
export async function sendFramed(kafka: Kafka, topic: string, id: number, schema: AvroSchema, records: readonly Record<string, unknown>[]): Promise<void> {
  const type = avro.Type.forSchema(schema as never);
  const producer = kafka.producer();
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: records.map((r) => ({ key: String(r.order_id), value: frame(id, type.toBuffer(r)) })) });
  } finally {
    await producer.disconnect();
  }
}

/**
 * Produces `records` under the writer `schema`: registers it first (the compatibility check), so
 * an incompatible schema throws before a single message is written.
 */
export async function produceWithRegistry(kafka: Kafka, registry: SchemaRegistry, topic: string, schema: AvroSchema, records: readonly Record<string, unknown>[]): Promise<number> {
  const id = registry.register(`${topic}-value`, schema);
  await sendFramed(kafka, topic, id, schema, records);
  return id;
}

export interface ConsumedMessage {
  offset: number;
  schemaId: number | null;
  /** Decoded with the reader schema (null: it could not be). */
  value: Record<string, unknown> | null;
  error?: string;
}

/**
 * Reads the topic from the beginning up to `count` messages with a consumer group of its own,
 * decoding each under `reader`: the writer schema by id, resolved to the reader schema.
 */
export async function consumeWithReader(kafka: Kafka, registry: SchemaRegistry, topic: string, groupId: string, reader: AvroSchema, count: number, timeoutMs = 20000): Promise<ConsumedMessage[]> {
  const readerType = avro.Type.forSchema(reader as never);
  const out: ConsumedMessage[] = [];
  if (count === 0) return out;
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`consumed ${out.length}/${count} messages of ${topic} in ${timeoutMs} ms`)), timeoutMs);
      consumer
        .run({
          eachMessage: async ({ message }) => {
            const m: ConsumedMessage = { offset: Number(message.offset), schemaId: null, value: null };
            try {
              const { id, payload } = unframe(message.value ?? Buffer.alloc(0));
              m.schemaId = id;
              m.value = readerType.fromBuffer(payload, readerType.createResolver(registry.schemaById(id))) as Record<string, unknown>;
            } catch (err) {
              m.error = String((err as Error).message).split('\n')[0];
            }
            out.push(m);
            if (out.length >= count) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
  return out.sort((a, b) => a.offset - b.offset);
}
