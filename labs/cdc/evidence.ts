/**
 * What one cdc run leaves behind: typed sections, each written by one step of scenario.ts and read
 * by the claims (claims.ts) and the view (view.ts). `run` holds the live handles (processes,
 * connections) the steps pass along; it is not evidence.
 */
import type { CaptureSource, OpenSource, CapturePlan } from '../../pipelines/cdc/capture-source.ts';
import type { LagSample, PortableTarget, ProcessEnd, Restarting, TableDiff, TopicAudit, sampleLag } from '../../pipelines/cdc/index.ts';
import type { WorkloadRun } from '../../pipelines/cdc/source.ts';
import type { ApplyEnv, ApplyHandle, ApplyRun } from './applies.ts';

export interface Batch {
  t: number;
  fresh: number;
  lat: number[];
}

export interface CdcRun extends ApplyEnv {
  open: OpenSource;
  targets: { main: PortableTarget; crashB: PortableTarget; crashC?: PortableTarget };
  /** The apply crash point's batch: the one carrying this change (an insert no later change touches). */
  sentinel: { topic: string; key: string };
  applyA: Restarting;
  mainGroup: string;
  crashB: ApplyHandle;
  crashC?: ApplyHandle;
  sampler: ReturnType<typeof sampleLag>;
  /** When the lag sampling (and the main apply) started: the x origin of the lag chart. */
  t0: number;
  /** The WAL position the last phase ended at: "caught up" means the slot has passed it. */
  lastEndLsn: string;
  /** The main apply when it started: restarts and pid (the schema change must not restart it). */
  applyAtStart: { restarts: number; pid: number };
  cleanup: () => Promise<void>;
}

export interface CdcState {
  /** Chosen once per run: where the events come from (live capture or replayed topics). */
  source: CaptureSource;
  plan: CapturePlan;
  run?: CdcRun;
  setup?: { live: boolean; snapshotRows: number; capturePid: number | null; slot: string; applyPid: number; group: string };
  /** Every batch the main apply committed. */
  aBatches: Batch[];
  phase1?: WorkloadRun & { startedAt: number; caughtUpAt: number };
  schema?: { targetHasColumn: boolean; sourceNulls: number; targetNulls: number; sourceValues: number; applyRestartsBefore: number; applyPid: number | null };
  /** `tested` false: this source does not crash its capture (replayed topics). */
  captureCrash?: { tested: boolean; ends: ProcessEnd[]; duplicatesPublished: number };
  /** `captureOverDebezium`: --capture debezium only — our capture's events/s over Debezium's on the backlog, each alone. */
  bench?: { changes: number; drainMs: number; workloadMs: number; captureOverDebezium?: number };
  /** --engine snowflake: whether the apply ran on the fakesnow emulator (its figures say nothing about Snowflake's speed). */
  sf?: { emulator: boolean };
  lag: LagSample[];
  lagEnd?: { consumerLag: number; slotBehindBytes: number };
  main?: { diff: TableDiff[]; rows: Record<string, Record<string, unknown>[]>; watermarks: Record<string, unknown>[]; fingerprint: string };
  crashBetweenCommits?: ApplyRun;
  crashRandom?: ApplyRun;
  replay?: ApplyRun & {
    fingerprintBefore: string;
    fingerprintAfter: string;
    /** The crash-test applies, for the table. */
    killed: { label: string; run: ApplyRun }[];
    /** Whether a kill leaves its target transaction open (Snowflake): then restarts abort them. */
    detached: boolean;
  };
  audit?: TopicAudit;
}

/** The run's handles; throws when the first step did not make them. */
export function runOf(s: CdcState): CdcRun {
  if (!s.run) throw new Error('cdc: the setup step did not run');
  return s.run;
}
