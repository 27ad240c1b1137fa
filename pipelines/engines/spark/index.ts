/**
 * The spark engine of an engine set: one Spark (local standalone cluster or SPARK_REMOTE) per
 * `Engines`, provisioned on first use and stopped by `stopAll()`; sessions on it.
 *
 *   provision.ts  the cluster: pyspark's jars from the de-lab cache, master + workers + Connect server
 *   proto.ts      the Spark Connect .proto files, from the running Spark's jar
 *   driver.ts     SparkSession: SQL over gRPC, Arrow results
 *   rest.ts       per-stage, per-task metrics from the driver's REST API
 *   target.ts     `engines.target('spark')`: a SqlEngine over a session, Delta Lake tables
 *   dialect.ts    Spark SQL's spellings, and what Delta lacks (transactions, PRIMARY KEY)
 */
import { oncePerEngineSet } from '../once.ts';
import type { Engines } from '../index.ts';
import { SparkSession } from './driver.ts';
import { provisionSpark, type SparkServer } from './provision.ts';

export { SparkSession, SparkSqlError, arrowRows, int32Ipc } from './driver.ts';
export { SPARK_VERSION, type SparkServer } from './provision.ts';

/** The Spark of this engine set, started once, stopped after every session has closed. */
export const sparkServer: (engines: Engines) => Promise<SparkServer> = oncePerEngineSet('spark', (e) => provisionSpark(e.mode, e.env, e.log));

/** A new Spark Connect session (its own temp views and SQL conf), closed by `stopAll()`. */
export async function sparkSession(engines: Engines): Promise<SparkSession> {
  const session = await SparkSession.connect(await sparkServer(engines));
  engines.onStop(() => session.close());
  return session;
}
