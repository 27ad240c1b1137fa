/**
 * `npm run engines:prepare`: fetches what the local engine providers need ahead of time, so the
 * first lab run does not pause for it: the Apache Kafka broker jars (Maven Central, cached in
 * ~/.cache/de-lab), and Kafka Connect with the Debezium PostgreSQL connector (the cdc capture
 * comparison, tests/cdc-debezium.test.ts), and Delta Lake's jars for the spark engine (Spark's own
 * come from PyPI: scripts/ci.d/spark.sh).
 */
import { ensureKafkaJars } from '../pipelines/engines/kafka/provision.ts';
import { ensureDebeziumJars } from '../pipelines/engines/debezium/provision.ts';
import { ensureDeltaJars } from '../pipelines/engines/spark/provision.ts';
import { errorLine } from '../pipelines/errors.ts';

try {
  const libs = ensureKafkaJars(process.env, (m) => process.stderr.write(m + '\n'));
  process.stdout.write(`Kafka jars ready in ${libs}\n`);
  process.stdout.write(`Debezium + Kafka Connect jars ready in ${ensureDebeziumJars(process.env, (m) => process.stderr.write(m + '\n'))}\n`);
  process.stdout.write(`Delta Lake jars ready in ${ensureDeltaJars(process.env, (m) => process.stderr.write(m + '\n'))}\n`);
} catch (err) {
  process.stderr.write(`de-lab: ${errorLine(err)}\n`);
  process.exit(3);
}
