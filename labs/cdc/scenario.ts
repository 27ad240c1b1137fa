/**
 * The cdc lab's steps: each runs part of the pipeline on real engines and writes its section of
 * the evidence (evidence.ts). Nothing here prints (view.ts does) and nothing asks which mode the
 * run is in: the capture source, chosen once, says what it can do.
 */
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { LabContext } from '../contract.ts';
import { Prng } from '../../fixtures/prng.ts';
import { GroupSupervisor, Restarting, consumerLag, keepCdcSpares, makePortableTarget, sampleLag, slotBehind, startApply, stopCdcSpares, waitCaughtUp, type ApplyImpl } from '../../pipelines/cdc/index.ts';
import { killLeavesTransactionOpen } from '../../pipelines/engines/portable.ts';
import { drainAndStop, groupName, launchApply, pauseApply, resumeApply, type ApplyEnv, type ApplyHandle } from './applies.ts';
import { runOf, type CdcRun, type CdcState } from './evidence.ts';
import { sentinelChange } from './plan.ts';
import { compareAll, fingerprint, inspectMain, withTarget } from './targets.ts';

export const referenceImpl: ApplyImpl = {
  applyModule: new URL('../../pipelines/cdc/apply.ts', import.meta.url).href,
  applyExport: 'applyBatch',
  commitOffsets: 'after-target-commit',
};

/** Waits until the slot has passed `endLsn` and the main apply group has consumed every topic. */
function caughtUp(ctx: LabContext, s: CdcState, endLsn: string, timeoutMs: number): Promise<void> {
  const r = runOf(s);
  return waitCaughtUp({
    admin: r.open.admin,
    source: r.open.source,
    slot: r.open.names.slot,
    endLsn,
    groupId: r.mainGroup,
    topics: r.open.names.topics,
    timeoutMs,
    alive: () => s.source.health() ?? r.applyA.health(),
    signal: ctx.signal,
    describe: () => {
      const a = r.applyA;
      const last = a.messages.slice(-2).map((m) => JSON.stringify(m.msg).slice(0, 160));
      return `apply pid ${a.proc.pid}, ${a.restarts} restarts, last messages ${last.join(' ')}; stderr: ${a.proc.stderrTail().slice(-300)}`;
    },
  });
}

const lastFreshBatch = (s: CdcState) => {
  const fresh = s.aBatches.filter((b) => b.fresh > 0).map((b) => b.t);
  return fresh.length ? Math.max(...fresh) : Date.now();
};

/**
 * Step 1. The source side (tables, rows, topics, the capture's slot and snapshot), the main apply,
 * and two more applies on the same topics, each into its own fresh target, to be killed: B by its
 * crash point in the batch carrying the sentinel change (after that batch's first commit,
 * whichever the implementation makes first), C by a SIGKILL from outside at a seeded random moment
 * while the workload streams (live sources only).
 */
export async function setUp(ctx: LabContext, impl: ApplyImpl, s: CdcState): Promise<void> {
  const { source, plan } = s;
  // Booted apply (and capture) processes waiting as spares: every start and every restart after a
  // crash takes one instead of booting node + tsx on the spot.
  keepCdcSpares({ apply: 2, capture: source.spareCaptures });
  ctx.engines.onStop(() => stopCdcSpares());
  const dir = mkdtempSync(join(ctx.workDir, 'cdc-'));
  const open = await source.open();
  const handles: Partial<CdcRun> = {};
  const cleanup = cleanupFor(s, handles);
  ctx.engines.onStop(cleanup);
  const supervisor = new GroupSupervisor(open.brokers);
  ctx.engines.onStop(() => supervisor.close());
  const env: ApplyEnv = { engines: ctx.engines, open, runTag: randomBytes(2).toString('hex'), supervisor };
  const make = (label: string) => makePortableTarget(ctx.engines, ctx.engine, dir, `cdc_${label}`);
  const main = await make('main');
  const emulator = await ctx.engines.emulated(ctx.engine);
  if (emulator !== null) s.sf = { emulator };
  const mainGroup = (handles.mainGroup = groupName(env, 'main'));
  handles.open = open;
  // The lag is sampled from before the main apply starts: it drains the snapshot (and, replayed, a full backlog).
  const t0 = Date.now();
  const sampler = sampleLag(open.admin, open.source, mainGroup, open.names.topics, open.names.slot, t0);
  handles.sampler = sampler;
  const applyA = new Restarting('apply', () => startApply({ brokers: open.brokers, groupId: mainGroup, topics: open.names.topics, target: main, impl, sessionTimeout: 10000 }, 'apply'), {
    beforeRestart: supervisor.evictDeadApply(mainGroup),
  });
  handles.applyA = applyA;
  applyA.onMessage((m) => {
    if (m.ev === 'batch') s.aBatches.push({ t: Number(m.t), fresh: Number(m.fresh), lat: (m.lat as number[]) ?? [] });
  });
  const sentinel = sentinelChange(plan.stream, [...plan.crash, ...plan.backlog], open.names.topicPrefix);
  const crashB = await make('crash_between_commits');
  const b = (handles.crashB = launchApply(env, impl, { label: 'crash_between', target: crashB, crash: { afterEvents: 0, key: sentinel } }));
  const crashC = source.live ? await make('crash_random') : undefined;
  const c = (handles.crashC = crashC ? launchApply(env, impl, { label: 'crash_random', target: crashC, killAfterMs: new Prng(ctx.seed).fork('cdc-kill').int(100, 1500) }) : undefined);
  const [snapshotRows] = await Promise.all([source.ready(), applyA.proc.waitFor('joined', 60000), b.proc.proc.waitFor('joined', 60000), c?.proc.proc.waitFor('joined', 60000)]);
  s.run = {
    ...env,
    targets: { main, crashB, crashC },
    sentinel,
    applyA,
    mainGroup,
    crashB: b,
    crashC: c,
    sampler,
    t0,
    lastEndLsn: '0/0',
    applyAtStart: { restarts: applyA.restarts, pid: applyA.proc.pid },
    cleanup,
  };
  s.setup = { live: source.live, snapshotRows, capturePid: source.pid(), slot: open.names.slot, applyPid: applyA.proc.pid, group: mainGroup };
}

/** Step 2. The streamed phase (inserts, updates, deletes, re-inserts, hot rows, a schema change) until the main target has all of it. */
export async function streamPhase(ctx: LabContext, _impl: ApplyImpl, s: CdcState): Promise<void> {
  const r = runOf(s);
  const phase = await s.source.stream(ctx.signal);
  await caughtUp(ctx, s, phase.endLsn, s.plan.timeoutMs);
  r.lastEndLsn = phase.endLsn;
  s.phase1 = { ...phase.run, startedAt: r.t0, caughtUpAt: lastFreshBatch(s) };
  const { restarts, pid } = r.applyAtStart;
  s.schema = { targetHasColumn: false, sourceNulls: 0, targetNulls: 0, sourceValues: 0, applyRestartsBefore: r.applyA.restarts - restarts, applyPid: r.applyA.proc.pid === pid ? pid : null };
}

/** Step 3. The capture dies after Kafka's ack and before the slot's; restarted, Postgres re-sends what the slot had not confirmed. */
export async function captureCrash(ctx: LabContext, _impl: ApplyImpl, s: CdcState): Promise<void> {
  const phase = await s.source.crash(ctx.signal);
  if (!phase) {
    s.captureCrash = { tested: false, ends: [], duplicatesPublished: 0 };
    return;
  }
  await caughtUp(ctx, s, phase.endLsn, 60000);
  runOf(s).lastEndLsn = phase.endLsn;
  s.captureCrash = { tested: true, ends: [...s.source.ends()], duplicatesPublished: 0 };
}

/**
 * Step 4 (benchmark). A backlog committed while the capture is stopped, drained end to end. Only
 * the capture and the main apply run during the measurement: the crash-test applies pause (clean
 * stop, offsets committed) and resume afterwards in the same groups.
 */
export async function drainBacklog(ctx: LabContext, impl: ApplyImpl, s: CdcState): Promise<void> {
  const r = runOf(s);
  const paused = [r.crashB, r.crashC].filter((h): h is ApplyHandle => !!h);
  await Promise.all(paused.map((h) => pauseApply(h)));
  const phase = await s.source.backlog(ctx.signal);
  const t0 = Date.now();
  await caughtUp(ctx, s, phase.endLsn, s.plan.timeoutMs);
  r.lastEndLsn = phase.endLsn;
  s.bench = { changes: phase.run.changes, drainMs: Math.max(1, lastFreshBatch(s) - t0), workloadMs: phase.run.ms, ...(phase.captureOverDebezium === undefined ? {} : { captureOverDebezium: phase.captureOverDebezium }) };
  for (const h of paused) resumeApply(r, impl, h);
}

/** Step 5. Lag at the end, then every target compared with the source as soon as its apply has stopped, side by side. */
export async function compareTargets(_ctx: LabContext, _impl: ApplyImpl, s: CdcState): Promise<void> {
  const r = runOf(s);
  const { admin, source, names } = r.open;
  await r.sampler.stop();
  s.lag = r.sampler.samples;
  s.lagEnd = { consumerLag: await consumerLag(admin, r.mainGroup, names.topics), slotBehindBytes: await slotBehind(source, names.slot, r.lastEndLsn) };
  s.lag.push({ t: Date.now() - r.t0, consumerLag: s.lagEnd.consumerLag, slotLagBytes: s.lagEnd.slotBehindBytes });
  const compared = (h: ApplyHandle, killExpected = false) => drainAndStop(r, h, killExpected).then(async (run) => ({ ...run, diff: await withTarget(h.target, (db) => compareAll(source, db)) }));
  const [b, c, , main] = await Promise.all([compared(r.crashB), r.crashC ? compared(r.crashC, true) : null, s.source.stopCapture(), r.applyA.stop().then(() => inspectMain(source, r.targets.main))]);
  s.crashBetweenCommits = b;
  if (c) s.crashRandom = c;
  s.main = main.main;
  Object.assign(s.schema ?? {}, main.column);
}

/** Step 6. Every topic replayed from offset 0 into the converged target, by a new consumer group. */
export async function replayTopics(_ctx: LabContext, impl: ApplyImpl, s: CdcState): Promise<void> {
  const r = runOf(s);
  const h = launchApply(r, impl, { label: 'replay', target: r.targets.main, sessionTimeout: 10000 });
  const replay = await drainAndStop(r, h);
  const fingerprintAfter = await withTarget(r.targets.main, (db) => fingerprint(db));
  const killed = [r.crashB, r.crashC].filter((x): x is ApplyHandle => !!x).map((k) => ({ label: k.label, run: k.run }));
  s.replay = { ...replay, fingerprintBefore: s.main?.fingerprint ?? '', fingerprintAfter, killed, detached: killLeavesTransactionOpen(r.targets.main) };
}

/** Step 7. What the topics carry, read by a bare consumer (tombstones, duplicates, same-ts_ms keys; the throughput floor). */
export async function auditTopics(_ctx: LabContext, _impl: ApplyImpl, s: CdcState): Promise<void> {
  s.audit = await s.source.audit();
  if (s.captureCrash) s.captureCrash.duplicatesPublished = s.audit.duplicateEvents;
  await runOf(s).cleanup();
}

/** Stops what the run started (once), then lets the source drop what was made for this run only. */
function cleanupFor(s: CdcState, h: Partial<CdcRun>): () => Promise<void> {
  let done = false;
  return async () => {
    if (done) return;
    done = true;
    await Promise.allSettled([s.source.stopCapture(), h.applyA?.stop(), h.crashB?.proc.stop(), h.crashC?.proc.stop(), h.sampler?.stop()]);
    if (h.open && h.mainGroup) await h.open.admin.deleteGroups([h.mainGroup]).catch(() => undefined);
    await s.source.close();
  };
}
