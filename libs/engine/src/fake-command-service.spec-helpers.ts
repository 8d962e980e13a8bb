import type {
  CommandResult,
  FinishStepRequest,
  FlowRun,
  FlowRunStatus,
  FlowStep,
  LeaseResult,
  StepStatus,
  TriggerRunRequestInput,
} from '@flowruns/contracts';
import { CommandServiceError, type CommandServicePort, type RunExecutionView } from './command-port';

type Call = { readonly op: string; readonly runId: string; readonly stepName?: string; readonly body?: unknown };

/**
 * An in-memory stand-in for the command service's internal API, for driver specs. It keeps just
 * enough state to answer like the real one: leases with holders, step results by attempt, the run
 * status; and it records every call. `refuse` makes a chosen call answer an error envelope.
 */
export class FakeCommandService implements CommandServicePort {
  readonly runs = new Map<string, RunExecutionView>();
  readonly leases = new Map<string, { holder: string; expiresAt: number }>();
  readonly calls: Call[] = [];
  readonly children: { flowId: string; req: TriggerRunRequestInput; id: string }[] = [];
  /** Return an error to make the call fail; checked before every call. */
  refuse: (call: Call) => Error | undefined = () => undefined;
  now: () => number = Date.now;

  addRun(runId: string, steps: FlowStep[], over: Partial<RunExecutionView> = {}): RunExecutionView {
    const view: RunExecutionView = {
      runId,
      projectId: 'proj_1',
      flowId: 'flow_1',
      flowVersionId: 'fv_1',
      status: 'RUNNING',
      attempt: 1,
      startTime: new Date(this.now()).toISOString(),
      parentRunId: null,
      failParentOnFailure: false,
      steps,
      trigger: {},
      results: {},
      pause: null,
      purged: false,
      ...over,
    };
    this.runs.set(runId, view);
    return view;
  }

  run(runId: string): RunExecutionView {
    const r = this.runs.get(runId);
    if (!r) throw new Error(`no run ${runId}`);
    return r;
  }

  /** The operations called, as `op` or `op:step`, optionally for one run only. */
  ops(runId?: string): string[] {
    return this.calls.filter((c) => !runId || c.runId === runId).map((c) => (c.stepName ? `${c.op}:${c.stepName}` : c.op));
  }

  bodyOf(op: string, stepName?: string): unknown {
    return this.calls.find((c) => c.op === op && (!stepName || c.stepName === stepName))?.body;
  }

  /** Sets the run's state as the decider would after these events (enough for the specs). */
  set(runId: string, patch: Partial<RunExecutionView>): void {
    this.runs.set(runId, { ...this.run(runId), ...patch });
  }

  retryFromFailedStep(runId: string): void {
    const r = this.run(runId);
    this.set(runId, { status: 'RUNNING', attempt: r.attempt + 1 });
  }

  private record(call: Call): void {
    this.calls.push(call);
    const err = this.refuse(call);
    if (err) throw err;
  }

  private result(runId: string): CommandResult {
    return { runId, version: this.calls.length, status: this.runs.get(runId)?.status ?? null, eventsAppended: 1 };
  }

  private mustRun(runId: string): RunExecutionView {
    const r = this.runs.get(runId);
    if (!r) throw new CommandServiceError(404, 'ENTITY_NOT_FOUND', { entityType: 'flow_run', entityId: runId });
    return r;
  }

  private fence(runId: string, workerId: string | undefined): void {
    if (workerId === undefined) return;
    if (this.leases.get(runId)?.holder !== workerId) throw new CommandServiceError(409, 'LEASE_LOST', { runId, workerId });
  }

  private running(runId: string): RunExecutionView {
    const r = this.mustRun(runId);
    if (r.status !== 'RUNNING') throw new CommandServiceError(409, 'INVALID_TRANSITION', { status: r.status });
    return r;
  }

  private setStep(runId: string, stepName: string, status: StepStatus, output?: unknown): void {
    const r = this.run(runId);
    this.set(runId, {
      results: { ...r.results, [stepName]: { status, attempt: r.attempt, ...(output === undefined ? {} : { output }) } },
    });
  }

  private end(runId: string, status: FlowRunStatus): void {
    this.set(runId, { status });
  }

  async getExecution(runId: string): Promise<RunExecutionView | null> {
    this.record({ op: 'execution', runId });
    const r = this.runs.get(runId);
    return r ? structuredClone(r) : null;
  }

  async acquireLease(runId: string, workerId: string, ttlMs: number): Promise<LeaseResult> {
    this.record({ op: 'lease', runId, body: { workerId, ttlMs } });
    const run = this.mustRun(runId);
    const held = this.leases.get(runId);
    // Like the command service: only RUNNING runs are leased; otherwise the answer names the holder, if any.
    if (run.status !== 'RUNNING') {
      return { acquired: false, holder: held?.holder ?? null, expiresAt: held ? new Date(held.expiresAt).toISOString() : null };
    }
    if (held && held.holder !== workerId && held.expiresAt > this.now()) {
      return { acquired: false, holder: held.holder, expiresAt: new Date(held.expiresAt).toISOString() };
    }
    const expiresAt = this.now() + ttlMs;
    this.leases.set(runId, { holder: workerId, expiresAt });
    return { acquired: true, holder: workerId, expiresAt: new Date(expiresAt).toISOString() };
  }

  async releaseLease(runId: string, workerId: string): Promise<void> {
    this.record({ op: 'release', runId, body: { workerId } });
    if (this.leases.get(runId)?.holder === workerId) this.leases.delete(runId);
  }

  async claimExpired(workerId: string, ttlMs: number, limit: number): Promise<string[]> {
    this.record({ op: 'claim', runId: '', body: { workerId, ttlMs, limit } });
    const out: string[] = [];
    for (const [runId, r] of this.runs) {
      if (out.length >= limit || r.status !== 'RUNNING') continue;
      const held = this.leases.get(runId);
      if (held && held.expiresAt > this.now()) continue;
      this.leases.set(runId, { holder: workerId, expiresAt: this.now() + ttlMs });
      out.push(runId);
    }
    return out;
  }

  async startStep(runId: string, stepName: string, req: { stepType: string; workerId?: string }): Promise<CommandResult> {
    this.record({ op: 'start', runId, stepName, body: req });
    this.running(runId);
    this.fence(runId, req.workerId);
    this.setStep(runId, stepName, 'RUNNING');
    return this.result(runId);
  }

  async finishStep(runId: string, stepName: string, req: FinishStepRequest): Promise<CommandResult> {
    this.record({ op: 'finish', runId, stepName, body: req });
    this.running(runId);
    this.fence(runId, req.workerId);
    this.setStep(runId, stepName, req.status, req.status === 'SUCCEEDED' ? req.output : undefined);
    return this.result(runId);
  }

  async pause(runId: string, req: { stepName: string; workerId?: string }): Promise<CommandResult & { requestId?: string }> {
    this.record({ op: 'pause', runId, stepName: req.stepName, body: req });
    this.running(runId);
    this.fence(runId, req.workerId);
    this.setStep(runId, req.stepName, 'PAUSED');
    const requestId = `req_${this.calls.length}`;
    this.set(runId, { status: 'PAUSED', pause: { requestId, stepName: req.stepName } });
    return { ...this.result(runId), requestId };
  }

  /** What the command service does on a resume: the paused step succeeds with the body. */
  resume(runId: string, body: unknown): void {
    const pause = this.run(runId).pause;
    if (!pause) throw new Error(`run ${runId} is not paused`);
    const stepName = pause.stepName;
    this.set(runId, { status: 'RUNNING', pause: null });
    this.setStep(runId, stepName, 'SUCCEEDED', body);
  }

  async succeed(runId: string, req: { workerId?: string }): Promise<CommandResult> {
    this.record({ op: 'succeed', runId, body: req });
    this.running(runId);
    this.fence(runId, req.workerId);
    this.end(runId, 'SUCCEEDED');
    return this.result(runId);
  }

  async fail(runId: string, req: { failedStepName: string | null; workerId?: string }): Promise<CommandResult> {
    this.record({ op: 'fail', runId, stepName: req.failedStepName ?? undefined, body: req });
    this.running(runId);
    this.fence(runId, req.workerId);
    this.end(runId, 'FAILED');
    return this.result(runId);
  }

  async timeOut(runId: string, req: { reason: 'EXECUTION_TIME' | 'PAUSE_TIME' | 'WORKER_LOST' }): Promise<CommandResult> {
    this.record({ op: 'time-out', runId, body: req });
    this.running(runId);
    this.end(runId, 'TIMEOUT');
    return this.result(runId);
  }

  async internalError(runId: string, req: { reason: string }): Promise<CommandResult> {
    this.record({ op: 'internal-error', runId, body: req });
    this.running(runId);
    this.end(runId, 'INTERNAL_ERROR');
    return this.result(runId);
  }

  async triggerRun(flowId: string, req: TriggerRunRequestInput): Promise<FlowRun> {
    this.record({ op: 'trigger', runId: req.parentRunId ?? '', body: { flowId, ...req } });
    const id = `child_${this.children.length + 1}`;
    this.children.push({ flowId, req, id });
    return { id } as FlowRun;
  }
}
