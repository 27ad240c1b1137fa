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
  // The file filters of `vitest run a.test.ts b` are not in the resolved config: read them from
  // the command line (positional arguments that name test files or folders).
  const filters = cliFileFilters(process.argv.slice(2));
  const { testFiles } = await project.globTestFiles(filters);
  if (!testFiles.some((f) => NEEDS_SNOWFLAKE.test(f))) return '';
  const { snowflakeServer } = await import('../pipelines/engines/snowflake/target.ts');
  const { handover } = await import('../pipelines/engines/snowflake/provision.ts');
  return handover(await snowflakeServer(engines));
}

function cliFileFilters(args: string[]): string[] {
  return args.filter((a) => !a.startsWith('-') && !['run', 'watch', 'dev', 'related'].includes(a) && /test|[/\\.]/.test(a));
}
