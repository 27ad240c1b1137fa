/**
 * How fast can anything publish CDC-sized events into the lab's Kafka on this machine? A bare
 * producer — no Postgres, no capture, no apply — sends `N` ~500-byte Debezium-shaped JSON events
 * (acks=all, 3 partitions) with kafkajs in the capture's shape and in larger, concurrent batches,
 * and with node-rdkafka (librdkafka) when it is installed beside the project. The cdc lab's
 * end-to-end rate cannot beat this; labs/cdc/README.md reads it against `cdc_e2e_over_raw`.
 *
 *   node --import tsx scripts/bench/producer-floor.ts [N=200000]
 *   (npm install --no-save node-rdkafka first to include the native client: it builds from source)
 */
import { createRequire } from 'node:module';
import { Engines } from '../../pipelines/engines/index.ts';
import { createTopics, kafkaClient } from '../../pipelines/cdc/index.ts';

const N = Number(process.argv[2] ?? 200_000);
const event = (i: number) =>
  JSON.stringify({
    op: 'u',
    before: { id: i, name: `name_${i}`, balance: i * 3.5, note: null },
    after: { id: i, name: `name_${i}x`, balance: i * 3.5 + 1, note: 'n' },
    source: { lsn: `0/${(i * 64).toString(16)}`, txId: 1000 + (i >> 4), table: 'public.accounts', ts_ms: 1763800000000 + i },
  });
const rate = (label: string, ms: number) => console.log(`${label.padEnd(52)} ${Math.round((N / ms) * 1000).toLocaleString('en-US').padStart(8)} events/s  (${Math.round(ms)} ms)`);

const engines = new Engines({ mode: 'auto', env: process.env, log: () => undefined });
try {
  const brokers = (await engines.kafka()).brokers;
  const kafka = kafkaClient(brokers, 'producer-floor');
  const admin = kafka.admin();
  await admin.connect();
  const topic = `producer_floor_${process.pid}`;
  await createTopics(admin, [topic], 3);
  try {
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    for (const [batch, inFlight] of [[1000, 1], [5000, 1], [2000, 4], [5000, 4]] as const) {
      const t0 = performance.now();
      const pending: Promise<unknown>[] = [];
      for (let i = 0; i < N; i += batch) {
        const messages = [];
        for (let j = i; j < Math.min(N, i + batch); j++) messages.push({ key: String(j % 5000), value: event(j) });
        pending.push(producer.send({ topic, messages, acks: -1 }));
        if (pending.length >= inFlight) await pending.shift();
      }
      await Promise.all(pending);
      rate(`kafkajs, ${batch}-event batches, ${inFlight} in flight`, performance.now() - t0);
    }
    await producer.disconnect();

    let Rd: { HighLevelProducer: new (conf: Record<string, unknown>) => any; librdkafkaVersion: string } | undefined;
    try {
      Rd = createRequire(`${process.cwd()}/package.json`)('node-rdkafka');
    } catch {
      console.log('node-rdkafka not installed: native client skipped');
    }
    if (Rd) {
      const native = new Rd.HighLevelProducer({ 'metadata.broker.list': brokers.join(','), 'linger.ms': 5, 'batch.num.messages': 10000, 'queue.buffering.max.messages': 1_000_000, acks: -1, 'enable.idempotence': true });
      await new Promise<void>((ok, fail) => native.connect({}, (err: unknown) => (err ? fail(err) : ok())));
      native.setPollInterval(10);
      const t0 = performance.now();
      let delivered = 0;
      await new Promise<void>((ok, fail) => {
        for (let j = 0; j < N; j++) native.produce(topic, null, Buffer.from(event(j)), String(j % 5000), Date.now(), (err: unknown) => (err ? fail(err) : ++delivered === N && ok()));
      });
      rate(`node-rdkafka (librdkafka ${Rd.librdkafkaVersion}), linger 5 ms`, performance.now() - t0);
      await new Promise<void>((ok) => native.disconnect(() => ok()));
    }
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined); // an external broker keeps nothing of ours
    await admin.disconnect();
  }
} finally {
  await engines.stopAll();
}
