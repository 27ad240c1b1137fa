/**
 * Per-stage and per-task metrics of the running application, from the driver UI's REST API
 * (/api/v1): what a Spark user reads in the UI's Stages tab, as numbers. Statements run one at a
 * time on a session, so the stages that appear while one runs are that statement's.
 */
import { LabError } from '../../errors.ts';

export interface StageSummary {
  stageId: number;
  attemptId: number;
  status: string;
  numTasks: number;
  inputRecords: number;
  shuffleReadRecords: number;
  shuffleWriteRecords: number;
  submissionTime?: string;
  completionTime?: string;
  name: string;
}

export interface TaskMetricsRow {
  taskId: number;
  index: number;
  attempt: number;
  executorId: string;
  status: string;
  launchTime: string;
  /** Launch to finish, ms (scheduler delay and deserialisation included). */
  duration: number;
  /** Time the executor ran the task's code, ms. */
  runMs: number;
  /** CPU time the task's thread used, ms (µs resolution): what it cost, whoever else held the core meanwhile. */
  cpuMs: number;
  inputRecords: number;
  shuffleReadRecords: number;
  shuffleWriteRecords: number;
  /** A failed attempt's reason (first line). */
  error?: string;
}

interface RawTask {
  errorMessage?: string;
  taskId: number;
  index: number;
  attempt: number;
  executorId: string;
  status: string;
  launchTime: string;
  duration?: number;
  taskMetrics?: {
    executorRunTime: number;
    executorCpuTime: number;
    inputMetrics: { recordsRead: number };
    shuffleReadMetrics: { recordsRead: number };
    shuffleWriteMetrics: { recordsWritten: number };
  };
}

export class SparkRest {
  private constructor(
    readonly uiUrl: string,
    readonly appId: string,
  ) {}

  static async open(uiUrl: string): Promise<SparkRest> {
    const apps = await get<{ id: string }[]>(`${uiUrl}/api/v1/applications`);
    if (!apps[0]) throw new LabError(`Spark: no application at ${uiUrl}/api/v1/applications`);
    return new SparkRest(uiUrl, apps[0].id);
  }

  private url(path: string): string {
    return `${this.uiUrl}/api/v1/applications/${this.appId}${path}`;
  }

  async stages(): Promise<StageSummary[]> {
    return get<StageSummary[]>(this.url('/stages'));
  }

  /**
   * Runs `fn` and returns the stages it ran (completed ones, in id order), once the UI has seen
   * them finish: the listener that feeds the REST API runs behind the scheduler.
   */
  async stagesOf<T>(fn: () => Promise<T>): Promise<{ result: T; stages: StageSummary[] }> {
    const before = new Set((await this.stages()).map((s) => `${s.stageId}.${s.attemptId}`));
    const result = await fn();
    let last = '';
    for (let i = 0; i < 100; i++) {
      const now = (await this.stages()).filter((s) => !before.has(`${s.stageId}.${s.attemptId}`));
      const key = now.map((s) => `${s.stageId}.${s.attemptId}:${s.status}`).sort().join(',');
      if (key === last && now.every((s) => s.status !== 'ACTIVE' && s.status !== 'PENDING')) {
        return { result, stages: now.filter((s) => s.status === 'COMPLETE').sort((a, b) => a.stageId - b.stageId || a.attemptId - b.attemptId) };
      }
      last = key;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new LabError('Spark: the REST API did not settle on the stages of a statement within 10 s');
  }

  async tasks(stageId: number, attemptId: number): Promise<TaskMetricsRow[]> {
    const raw = await get<RawTask[]>(this.url(`/stages/${stageId}/${attemptId}/taskList?length=100000&sortBy=ID`));
    return raw.map((t) => ({
      taskId: t.taskId,
      index: t.index,
      attempt: t.attempt,
      executorId: t.executorId,
      status: t.status,
      launchTime: t.launchTime,
      duration: t.duration ?? 0,
      runMs: t.taskMetrics?.executorRunTime ?? 0,
      cpuMs: (t.taskMetrics?.executorCpuTime ?? 0) / 1e6,
      inputRecords: t.taskMetrics?.inputMetrics.recordsRead ?? 0,
      shuffleReadRecords: t.taskMetrics?.shuffleReadMetrics.recordsRead ?? 0,
      shuffleWriteRecords: t.taskMetrics?.shuffleWriteMetrics.recordsWritten ?? 0,
      ...(t.errorMessage ? { error: t.errorMessage.split('\n')[0] } : {}),
    }));
  }

  async executors(): Promise<{ id: string; hostPort: string; isActive: boolean }[]> {
    return get(this.url('/allexecutors'));
  }
}

async function get<T>(url: string): Promise<T> {
  const r = await fetch(url, { signal: AbortSignal.timeout(10_000) }).catch((err: Error) => {
    throw new LabError(`Spark: REST API ${url} does not answer (${err.message})`);
  });
  if (!r.ok) throw new LabError(`Spark: REST API ${url} answered ${r.status}`);
  return (await r.json()) as T;
}
