import { UsageError } from '../errors.ts';

/** How engines are obtained: see README "Engine modes". */
export type ProvisionMode = 'auto' | 'containers' | 'local' | 'external';
export const PROVISION_MODES: readonly ProvisionMode[] = ['auto', 'containers', 'local', 'external'];

export function parseProvisionMode(v: string | undefined): ProvisionMode {
  const m = (v ?? 'auto') as ProvisionMode;
  if (!PROVISION_MODES.includes(m)) throw new UsageError(`--provision must be one of ${PROVISION_MODES.join('|')}, got "${v}"`);
  return m;
}

export interface ProvisionedServer {
  provider: 'external' | 'containers' | 'local';
  stop(): Promise<void>;
  /** pid of the server process we started (local provider). */
  pid?: number;
  /** temp dir of the server (local provider), removed on stop. */
  dir?: string;
}
