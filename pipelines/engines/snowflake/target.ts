import { oncePerEngineSet } from '../once.ts';
import type { Engines } from '../index.ts';
import { SnowflakeEngine, type SnowflakeConnectionOptions } from './driver.ts';
import { provisionSnowflake, type SnowflakeServer } from './provision.ts';

export { SnowflakeEngine };
export type { SnowflakeServer };

// One Snowflake provider per engine set, provisioned on first use (runs that never ask for
// Snowflake never start the emulator nor load the driver).

/** The Snowflake provider of this engine set (real account or emulator), started once, stopped after every connection. */
export const snowflakeServer: (engines: Engines) => Promise<SnowflakeServer> = oncePerEngineSet('snowflake', (e) => provisionSnowflake(e.mode, e.env, e.log));

/**
 * `engines.target('snowflake')`: a fresh, empty schema for this run (`<runId>_<label>_<n>`) and a
 * connection whose default schema it is, so unqualified table names land there. On a real
 * account the schema is dropped at stopAll(); the emulator's state dies with it.
 */
export async function openSnowflakeTarget(engines: Engines, label: string): Promise<SnowflakeEngine> {
  const descriptor = await createSnowflakeTarget(engines, label);
  return connectSnowflakeTarget(descriptor, engines.env);
}

/**
 * A fresh schema, as a serializable descriptor another process can open with
 * `connectSnowflakeTarget` (the cdc apply process). No secret travels in it: a real account's
 * password / key passphrase are read from that process's SNOWFLAKE_* environment.
 */
export type SnowflakeTargetDescriptor = Record<string, string>;

export async function createSnowflakeTarget(engines: Engines, label: string): Promise<SnowflakeTargetDescriptor> {
  const server = await snowflakeServer(engines);
  const schema = engines.freshName(label).toUpperCase();
  const admin = await SnowflakeEngine.connect(server.connection, server.provider === 'external' ? 'external' : 'local');
  const db = admin.dialect.ident(server.database);
  const qualified = `${db}.${admin.dialect.ident(schema)}`;
  try {
    if (server.emulator) await admin.exec(`CREATE DATABASE IF NOT EXISTS ${db}`);
    await admin.exec(`CREATE SCHEMA ${qualified}`);
  } finally {
    await admin.close();
  }
  if (!server.emulator) {
    engines.onStop(async () => {
      const dropper = await SnowflakeEngine.connect(server.connection, 'external');
      try {
        await dropper.exec(`DROP SCHEMA IF EXISTS ${qualified} CASCADE`);
      } finally {
        await dropper.close();
      }
    });
  }
  const c = server.connection;
  const descriptor: SnowflakeTargetDescriptor = { provider: server.provider === 'external' ? 'external' : 'local', account: c.account, username: c.username, database: server.database, schema };
  for (const k of ['privateKeyPath', 'warehouse', 'role', 'accessUrl'] as const) if (c[k]) descriptor[k] = c[k]!;
  // The emulator's fixed password is no secret; a real account's stays in the environment.
  if (server.emulator && c.password) descriptor.password = c.password;
  return descriptor;
}

/** Opens a descriptor from `createSnowflakeTarget` (in this process or another). */
export function connectSnowflakeTarget(d: SnowflakeTargetDescriptor, env: NodeJS.ProcessEnv = process.env): Promise<SnowflakeEngine> {
  const provider = d.provider === 'external' ? 'external' : 'local';
  const options: SnowflakeConnectionOptions = {
    account: d.account!,
    username: d.username!,
    password: d.password ?? (provider === 'external' ? env.SNOWFLAKE_PASSWORD : undefined),
    privateKeyPath: d.privateKeyPath,
    privateKeyPass: d.privateKeyPath ? env.SNOWFLAKE_PRIVATE_KEY_PASSPHRASE : undefined,
    warehouse: d.warehouse,
    role: d.role,
    database: d.database,
    schema: d.schema,
    accessUrl: d.accessUrl,
  };
  return SnowflakeEngine.connect(options, provider);
}

/** True when this engine is the fakesnow emulator (its timings are emulator figures, not Snowflake's). */
export function isSnowflakeEmulator(engine: { name: string }): boolean {
  return engine instanceof SnowflakeEngine && engine.provider === 'local';
}
