import type { Engines } from './index.ts';

/**
 * A server an engine set starts on first use and stops last (the Snowflake provider, the Spark
 * cluster): `start` runs once per `Engines`, its stop is registered before anything that uses it
 * (so `stopAll()` runs it after every connection or session has closed), and its label goes into
 * the run's `providers`.
 */
export function oncePerEngineSet<S extends { stop(): Promise<void>; label: string }>(provider: string, start: (engines: Engines) => Promise<S>): (engines: Engines) => Promise<S> {
  const servers = new WeakMap<Engines, Promise<S>>();
  return (engines) => {
    let server = servers.get(engines);
    if (!server) {
      const started = start(engines);
      server = started;
      servers.set(engines, started);
      engines.onStop(async () => (await started.catch(() => null))?.stop());
      void started.then((s) => void (engines.providerNotes[provider] = s.label)).catch(() => undefined);
    }
    return server;
  };
}
