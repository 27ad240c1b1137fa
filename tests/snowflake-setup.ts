import type { TestProject } from 'vitest/node';
import type { Engines } from '../pipelines/engines/index.ts';

/** Test files whose claims also run on the Snowflake engine (emulator, or a real account). */
const NEEDS_SNOWFLAKE = /(^|[/\\])(snowflake[^/\\]*|scd2|cdc)\.test\.ts$/;

/**
 * Lazily provisions Snowflake for the test run: only when the files this run will execute
 * include one that needs it (so `vitest run tests/smoke.test.ts` never starts the emulator).
 * Returns the handover string for `DE_LAB_SNOWFLAKE_SERVER` (see snowflake/provision.ts), or ''.
 */
export async function provisionSnowflakeForRun(project: TestProject, engines: Engines): Promise<string> {
  const filters = (project.vitest.config as { filters?: string[] }).filters ?? [];
  const { testFiles } = await project.globTestFiles(filters);
  if (!testFiles.some((f) => NEEDS_SNOWFLAKE.test(f))) return '';
  const { snowflakeServer } = await import('../pipelines/engines/snowflake/target.ts');
  const { handover } = await import('../pipelines/engines/snowflake/provision.ts');
  return handover(await snowflakeServer(engines));
}
