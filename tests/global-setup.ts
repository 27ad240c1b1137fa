import type { TestProject } from 'vitest/node';
import { Engines } from '../pipelines/engines/index.ts';
import { parseProvisionMode } from '../pipelines/engines/provision-mode.ts';
import { provisionSnowflakeForRun } from './snowflake-setup.ts';

/**
 * Provisions one Postgres and one Kafka for the whole test run (in parallel) and hands their
 * addresses to every test file; stops them when the run ends. Honours PG_URL / KAFKA_BROKERS /
 * LAB_PROVISION like the CLI does.
 */
let engines: Engines | undefined;

export default async function setup(project: TestProject) {
  engines = new Engines({ mode: parseProvisionMode(process.env.LAB_PROVISION), log: (m) => process.stderr.write(`[engines] ${m}\n`) });
  const [pg, kafka, snowflake] = await Promise.all([engines.postgres(), engines.kafka(), provisionSnowflakeForRun(project, engines)]);
  project.provide('PG_URL', pg.url);
  project.provide('KAFKA_BROKERS', kafka.brokers.join(','));
  project.provide('SNOWFLAKE_SERVER', snowflake);
  return async () => {
    await engines?.stopAll();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    PG_URL: string;
    KAFKA_BROKERS: string;
    /** Snowflake provider handover ('' when no test file of this run needs Snowflake). */
    SNOWFLAKE_SERVER: string;
  }
}
