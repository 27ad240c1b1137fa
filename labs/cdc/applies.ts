/**
 * The apply processes of one cdc run: each in its own consumer group on the run's topics, into its
 * own target, restarted after a crash (its dead group member evicted first), and the figures a
 * claim reads once it has drained: how often it died, how many batches and fresh events it applied.
 */
import type { Engines } from '../../pipelines/engines/index.ts';
import type { OpenSource } from '../../pipelines/cdc/capture-source.ts';
import { APPLY_CRASH_POINT, GroupSupervisor, Restarting, startApply, waitGroupDrained, type ApplyImpl, type PortableTarget, type ProcessEnd, type TableDiff } from '../../pipelines/cdc/index.ts';

export interface ApplyRun {
  diff?: TableDiff[];
  crashed: ProcessEnd[];
  /** Events the apply found beyond its watermark (replay: must be 0). */
  fresh: number;
  batches: number;
  killedAfterBatches?: number;
  /** After each crash: ms from the death to the restarted consumer's group join (≈ the session timeout). */
  rejoinMs: number[];
  /** Target sessions of killed predecessors a restart aborted (Snowflake: their transactions stay open otherwise). */
  sessionsAborted: number;
}

/** What every apply of a run shares: the engines, the open source side, the run's tag, the group supervisor. */
export interface ApplyEnv {
  engines: Engines;
  open: OpenSource;
  /** Per-candidate tag in consumer-group names (a candidate's groups never meet another's on shared topics). */
  runTag: string;
  /** Evicts the group members of killed apply processes (one Kafka connection per run). */
  supervisor: GroupSupervisor;
}

export interface ApplyHandle {
  label: string;
  target: PortableTarget;
  /** Set while paused for the throughput measurement: what happened before. */
  paused?: { ends: ProcessEnd[]; run: ApplyRun };
  groupId: string;
  proc: Restarting;
  run: ApplyRun;
  killTimer?: NodeJS.Timeout;
}

/** A consumer group of this run. */
export function groupName(env: ApplyEnv, label: string): string {
  return env.engines.name(`${env.open.names.topicPrefix}_${env.runTag}_${label}`);
}

/** Starts one apply process (restarted after crashes) in its own consumer group. */
export function launchApply(
  env: ApplyEnv,
  impl: ApplyImpl,
  opts: {
    label: string;
    target: PortableTarget;
    crash?: { afterEvents: number; key?: { topic: string; key: string } };
    killAfterMs?: number;
    sessionTimeout?: number;
    /** Target sessions of earlier processes of this apply (a resumed one's). */
    predecessors?: string[];
  },
): ApplyHandle {
  const groupId = groupName(env, opts.label);
  const run: ApplyRun = { crashed: [], fresh: 0, batches: 0, rejoinMs: [], sessionsAborted: 0 };
  // The supervisor evicts a dead process's group member before restarting it: the restart joins at
  // once instead of after the member's session expires (the semantics are the session expiry's).
  const proc: Restarting = new Restarting(
    opts.label,
    (attempt) =>
      startApply(
        {
          brokers: env.open.brokers,
          groupId,
          topics: env.open.names.topics,
          target: opts.target,
          impl,
          crash: attempt === 0 && opts.crash ? { point: APPLY_CRASH_POINT, ...opts.crash } : undefined,
          sessionTimeout: opts.sessionTimeout ?? env.open.sessionTimeout,
          abortSessions: [...(opts.predecessors ?? []), ...(attempt > 0 ? targetSessions(proc) : [])],
        },
        opts.label,
      ),
    { beforeRestart: env.supervisor.evictDeadApply(groupId) },
  );
  const h: ApplyHandle = { label: opts.label, target: opts.target, groupId, proc, run };
  proc.onMessage((m) => {
    if (m.ev === 'joined' && proc.restarts > 0) run.rejoinMs.push(Number(m.t) - proc.ends[proc.ends.length - 1]!.at);
    countBatch(run, m);
    if (m.ev === 'batch' && opts.killAfterMs !== undefined && !h.killTimer && proc.restarts === 0) {
      // The "random point": a SIGKILL from outside, a seeded delay after the first batch.
      h.killTimer = setTimeout(() => {
        run.killedAfterBatches = run.batches;
        proc.proc.kill();
      }, opts.killAfterMs);
    }
  });
  return h;
}

function countBatch(run: ApplyRun, m: Record<string, unknown>): void {
  if (m.ev === 'target-session-aborted' && /aborted/i.test(String(m.result))) run.sessionsAborted += 1;
  if (m.ev !== 'batch') return;
  run.batches += 1;
  run.fresh += Number(m.fresh);
}

/** The target sessions the processes of an apply reported (engines with `dialect.sessions`). */
function targetSessions(proc: Restarting): string[] {
  return proc.messages.filter((m) => m.msg.ev === 'target-session').map((m) => String(m.msg.id));
}

/** Clean stop of a crash-test apply (after its crash happened), keeping its group and target. */
export async function pauseApply(h: ApplyHandle): Promise<void> {
  const deadline = Date.now() + 30000;
  while (h.proc.restarts === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (h.killTimer) clearTimeout(h.killTimer);
  await h.proc.stop();
  h.paused = { ends: [...h.proc.ends], run: { ...h.run } };
}

/** Starts a paused apply again: same group (resumes at its committed offsets), same target, no crash point. */
export function resumeApply(env: ApplyEnv, impl: ApplyImpl, h: ApplyHandle): void {
  const next = launchApply(env, impl, { label: h.label, target: h.target, predecessors: targetSessions(h.proc) });
  h.proc = next.proc;
  next.proc.onMessage((m) => countBatch(h.run, m));
}

/** Waits until the apply has committed everything in the topics (after its restarts), then stops it. */
export async function drainAndStop(env: ApplyEnv, h: ApplyHandle, killExpected = false): Promise<ApplyRun> {
  const { admin, names, sessionTimeout } = env.open;
  const timeout = 60000 + 4 * sessionTimeout;
  try {
    if (killExpected) {
      // The kill may come after everything was drained: wait for it, then for the restart to drain.
      const deadline = Date.now() + timeout;
      while (h.run.killedAfterBatches === undefined && h.proc.restarts === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    }
    await waitGroupDrained(admin, h.groupId, names.topics, timeout, () => h.proc.health());
  } finally {
    if (h.killTimer) clearTimeout(h.killTimer);
    await h.proc.stop();
  }
  h.run.crashed = [...(h.paused?.ends ?? []), ...h.proc.ends];
  await admin.deleteGroups([h.groupId]).catch(() => undefined);
  return h.run;
}
