import type { TestProject } from 'vitest/node';
import { Engines } from '../pipelines/engines/index.ts';
import { parseProvisionMode } from '../pipelines/engines/provision-mode.ts';

/**
 * Provisions one Postgres and one Kafka for the whole test run (in parallel) and hands their
 * addresses to every test file; stops them when the run ends. Honours PG_URL / KAFKA_BROKERS /
 * LAB_PROVISION like the CLI does.
 */
let engines: Engines | undefined;

export default async function setup(project: TestProject) {
  engines = new Engines({ mode: parseProvisionMode(process.env.LAB_PROVISION), log: (m) => process.stderr.write(`[engines] ${m}\n`) });
  const [pg, kafka] = await Promise.all([engines.postgres(), engines.kafka()]);
  project.provide('PG_URL', pg.url);
  project.provide('KAFKA_BROKERS', kafka.brokers.join(','));
  return async () => {
    await engines?.stopAll();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    PG_URL: string;
    KAFKA_BROKERS: string;
  }
}
