import {
  domainError,
  isDomainError,
  isTerminal,
  type BulkRunRequest,
  type BulkRunResult,
  type CommandResult,
  type CreateFlow,
  type DomainError,
  type EngineReport,
  type FinishStepRequest,
  type Flow,
  type FlowRun,
  type LeaseResult,
  type PublishFlowVersion,
  type ResumeResult,
  type RetryRunRequest,
  type RunEnvironment,
  type RunEventData,
  type RunExecution,
  type RunHead,
  type TriggerRunRequest,
} from '@flowruns/contracts';
import { ExecutionDataStore, type NewExecutionRecord } from '@flowruns/execution-data';
import { requestNotIssued, type RunCommand, type RunState } from '@flowruns/run-domain';
import { v7 as uuidv7 } from 'uuid';
import { FlowStore, latestKey, type FlowVersionRecord } from './flows';
import { LeaseStore } from './leases';
import { appendManyWithRules, appendWithRules, applyFailureRules, fenced } from './run-rules';
import { bulkStatuses, inStatuses, selectBulkPages } from './bulk';
import { holdAgainstPurge } from './purge-lock';
import { purgeExpiredBatch, purgeRuns, retentionPlan, type PurgeBatchOutcome, type PurgeCursor, type PurgeOutcome, type RetentionWindow } from './retention';
import {
  appendToLockedRuns,
  appendToNewRuns,
  lockStreams,
  readStream,
  readRetrySources,
  readTriggered,
  type AppendOptions,
  type AppendResult,
  type CommandBuilder,
  type RetrySource,
  type StreamRow,
  type Write,
} from './run-store';
import { applyReports, newRequestId, type ReportOutcome } from './reports';
import { hasSqlState, type SqlRunner } from './sql';

/** Runs a unit of work in one Postgres transaction (MikroORM's `em.transactional` in the app). */
export interface Transactor {
  transactional<T>(work: (sql: SqlRunner) => Promise<T>): Promise<T>;
}

class Rollback extends Error {
  constructor(readonly error: DomainError) {
    super(error.code);
  }
}

/** Deadlock or serialization failure: Postgres rolled the transaction back; running it again is safe. */
const isRetriable = (e: unknown): boolean =>
  hasSqlState(e, '40P01', '40001') || (e as { name?: string } | null)?.name === 'DeadlockException';

/**
 * Runs `work` in one transaction; a DomainError it returns rolls the transaction back and is
 * returned. A deadlock (e.g. a child failing its parent while the parent's stop cascades to the
 * child) is retried a few times: the work is all inside the transaction, so it is safe to repeat.
 */
export async function inTransaction<T>(tx: Transactor, work: (sql: SqlRunner) => Promise<T | DomainError>): Promise<T | DomainError> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await tx.transactional(async (sql) => {
        const r = await work(sql);
        if (isDomainError(r)) throw new Rollback(r);
        return r;
      });
    } catch (e) {
      if (e instanceof Rollback) return e.error;
      if (attempt < 4 && isRetriable(e)) continue;
      throw e;
    }
  }
}

export interface CommandContext {
  readonly traceparent?: string | null;
  readonly now?: Date;
  /** The reporting engine: its report is refused (LEASE_LOST) unless it holds the run's lease. */
  readonly workerId?: string;
}

export interface RunCommandsOptions {
  /** `AP_MAX_RETRY_ATTEMPTS`: attempts a run may have in all (the first one included). */
  readonly maxRetryAttempts: number;
  /** `AP_PAUSE_TIMEOUT_SECONDS`: the resume deadline of a pause that names none. */
  readonly pauseTimeoutSeconds: number;
  /** Runs a bulk operation changes per transaction (and reads per page). */
  readonly bulkBatchSize: number;
  /**
   * Pages of a bulk operation in flight at once (default 2): while Postgres writes one page, the
   * next is read, locked and decided. Pages are disjoint (keyset on run id).
   */
  readonly bulkPagesInFlight?: number;
}

export const DEFAULT_RUN_COMMANDS_OPTIONS: RunCommandsOptions = {
  maxRetryAttempts: 5,
  pauseTimeoutSeconds: 86400,
  bulkBatchSize: 1000,
};

export { newRequestId };

/** What a new run starts from (a trigger, or a retry on the latest version). */
interface NewRun {
  readonly runId: string;
  readonly projectId: string;
  readonly flow: FlowVersionRecord;
  /** The trigger payload: given, or a copy of a stored record's (a retry's), made inside Postgres. */
  readonly payload: { readonly value: unknown } | { readonly copyOf: string };
  readonly environment: RunEnvironment;
  readonly triggeredBy: string | null;
  readonly parentRunId: string | null;
  readonly failParentOnFailure: boolean;
  readonly retryOf: string | null;
}

/** A trigger's parent that does not exist (or is another project's run): the trigger's refusal. */
async function parentRefusal(sql: SqlRunner, req: TriggerRunRequest): Promise<DomainError | null> {
  if (req.parentRunId === null) return null;
  const parent = await readStream(sql, req.parentRunId);
  if (parent && parent.projectId === req.projectId) return null;
  return domainError('ENTITY_NOT_FOUND', {
    entityType: 'flow_run',
    entityId: req.parentRunId,
    field: 'ap-parent-run-id',
    message: 'Parent flow run not found',
  });
}

/** The run a trigger starts: a fresh id on the flow's latest version. */
const newRunOf = (req: TriggerRunRequest, flow: FlowVersionRecord, now: Date): NewRun => ({
  runId: uuidv7({ msecs: now.getTime() }),
  projectId: req.projectId,
  flow,
  payload: { value: req.payload },
  environment: req.environment,
  triggeredBy: req.triggeredBy,
  parentRunId: req.parentRunId,
  failParentOnFailure: req.failParentOnFailure,
  retryOf: null,
});

/**
 * A retry on the latest version: a new top-level run (the original's parent may have ended long
 * ago) of `flow` with a copy of the original's trigger payload, `retryOf` linking it.
 */
const retryRunOf = (
  original: string,
  projectId: string,
  flow: FlowVersionRecord,
  source: RetrySource,
  newRunId: string,
  payloadRef: string,
): NewRun => ({
  runId: newRunId,
  projectId,
  flow,
  payload: { copyOf: payloadRef },
  environment: source.environment,
  triggeredBy: source.triggeredBy,
  parentRunId: null,
  failParentOnFailure: false,
  retryOf: original,
});

/**
 * The statements that store new runs' trigger payloads under their references: given ones as
 * claim-checked records (one statement), copies made inside Postgres (one statement).
 */
function payloadWrites(started: readonly { readonly run: NewRun; readonly ref: string }[]): Write[] {
  const given: (NewExecutionRecord & { ref: string })[] = [];
  const copied: { ref: string; runId: string; from: string }[] = [];
  for (const { run, ref } of started) {
    if ('copyOf' in run.payload) copied.push({ ref, runId: run.runId, from: run.payload.copyOf });
    else given.push({ ref, runId: run.runId, kind: 'trigger', stepName: null, attempt: null, input: undefined, output: run.payload.value ?? null, error: undefined });
  }
  return [
    ...(given.length ? [ExecutionDataStore.insertManyOf(given)] : []),
    ...(copied.length ? [ExecutionDataStore.copyTriggerPayloadsOf(copied)] : []),
  ];
}

/** What a new run's `flowrun.triggered.v1` event says, its payload stored under `triggerDataRef`. */
const triggeredData = (run: NewRun, triggerDataRef: string): RunEventData<'flowrun.triggered.v1'> => ({
  flowVersionId: run.flow.versionId,
  flowDisplayName: run.flow.versionDisplayName,
  environment: run.environment,
  triggeredBy: run.triggeredBy,
  tags: [...run.flow.tags],
  stepsCount: run.flow.steps.length,
  parentRunId: run.parentRunId,
  failParentOnFailure: run.failParentOnFailure,
  retryOf: run.retryOf,
  triggerDataRef,
  logsFileId: null,
});

/**
 * The command service's use cases. Each runs in one transaction: claim-checked data, the decision,
 * the appended events and the rules that follow from them (a failing child fails its parent) commit
 * together or not at all.
 */
export class RunCommands {
  private readonly options: RunCommandsOptions;

  constructor(
    private readonly tx: Transactor,
    private readonly clock: () => Date = () => new Date(),
    options: Partial<RunCommandsOptions> = {},
  ) {
    this.options = { ...DEFAULT_RUN_COMMANDS_OPTIONS, ...options };
  }

  private inTx<T>(work: (sql: SqlRunner) => Promise<T | DomainError>): Promise<T | DomainError> {
    return inTransaction(this.tx, work);
  }

  private result(r: AppendResult): CommandResult {
    return { runId: r.runId, version: r.version, status: r.state.status, eventsAppended: r.events.length };
  }

  // ---- Flows ----

  createFlow(input: CreateFlow, ctx: CommandContext = {}): Promise<Flow | DomainError> {
    return this.inTx((sql) => new FlowStore(sql).create(input, ctx.now ?? this.clock()));
  }

  publishFlowVersion(flowId: string, input: PublishFlowVersion, ctx: CommandContext = {}): Promise<Flow | DomainError> {
    return this.inTx((sql) => new FlowStore(sql).publish(flowId, input, ctx.now ?? this.clock()));
  }

  listFlows(projectId: string): Promise<{ data: Flow[] } | DomainError> {
    return this.inTx(async (sql) => ({ data: await new FlowStore(sql).list(projectId) }));
  }

  getFlow(projectId: string, flowId: string): Promise<Flow | DomainError> {
    return this.inTx(
      async (sql) =>
        (await new FlowStore(sql).get(projectId, flowId)) ??
        domainError('ENTITY_NOT_FOUND', { entityType: 'flow', entityId: flowId, message: 'Flow not found' }),
    );
  }

  // ---- Runs ----

  /** Starts a run of the flow's latest version with the trigger payload (or records it over quota). */
  async trigger(flowId: string, req: TriggerRunRequest, ctx: CommandContext = {}): Promise<FlowRun | DomainError> {
    const now = ctx.now ?? this.clock();
    return this.inTx((sql) => this.triggerIn(sql, flowId, req, now, ctx));
  }

  /**
   * Many triggers (any flows and projects) in one transaction: each decided exactly as `trigger`
   * decides it and answered on its own (a refusal — unknown flow, unknown parent — is that trigger's
   * answer alone; a run over its project's quota is recorded QUOTA_EXCEEDED as always). Applied in
   * project order, so batches lock the projects with quotas in one order; answered in the order given.
   */
  async triggerMany(
    triggers: readonly (TriggerRunRequest & { readonly flowId: string; readonly traceparent?: string })[],
    ctx: CommandContext = {},
  ): Promise<(FlowRun | DomainError)[] | DomainError> {
    const now = ctx.now ?? this.clock();
    const order = triggers.map((_, i) => i).sort((a, b) => (triggers[a].projectId < triggers[b].projectId ? -1 : triggers[a].projectId > triggers[b].projectId ? 1 : a - b));
    return this.inTx(async (sql) => {
      // Every flow of the batch in one read (its plan alone cost more than the trigger's own write).
      const flows = await new FlowStore(sql).latestMany(triggers);
      const out = new Array<FlowRun | DomainError>(triggers.length);
      // Runs of projects without a quota are started together, in one statement after the loop:
      // nothing about one depends on another. A project with a quota is locked and counted trigger
      // by trigger, each run counting the ones before it.
      const together: { index: number; run: NewRun; traceparent: string | null | undefined }[] = [];
      for (const i of order) {
        const t = triggers[i];
        const flow = flows.get(latestKey(t.projectId, t.flowId)) ?? null;
        const traceparent = t.traceparent ?? ctx.traceparent;
        if (flow === null || flow.monthlyRunQuota !== null) {
          out[i] = await this.triggerIn(sql, t.flowId, t, now, { ...ctx, traceparent }, flow);
          continue;
        }
        const refused = await parentRefusal(sql, t);
        if (refused) out[i] = refused;
        else together.push({ index: i, run: newRunOf(t, flow, now), traceparent });
      }
      const traceparents = new Map(together.map((x) => [x.run.runId, x.traceparent]));
      const started = await this.startRuns(
        sql,
        together.map((x) => x.run),
        now,
        { now, traceparent: ctx.traceparent, traceparentOf: (runId) => traceparents.get(runId) },
      );
      together.forEach((x, k) => (out[x.index] = started[k]));
      return out;
    });
  }

  /**
   * A trigger inside the caller's transaction. Its refusals come before it writes anything. `known`:
   * the flow as the caller read it for a batch (null: not found), else it is read here.
   */
  private async triggerIn(
    sql: SqlRunner,
    flowId: string,
    req: TriggerRunRequest,
    now: Date,
    ctx: CommandContext,
    known?: FlowVersionRecord | null,
  ): Promise<FlowRun | DomainError> {
    const flow = known !== undefined ? known : await new FlowStore(sql).latest(req.projectId, flowId);
    if (!flow) return domainError('ENTITY_NOT_FOUND', { entityType: 'flow', entityId: flowId, message: 'Flow not found' });
    const refused = await parentRefusal(sql, req);
    if (refused) return refused;
    return this.startRun(sql, newRunOf(req, flow, now), now, ctx);
  }

  /**
   * Records a new run: the trigger payload (claim check), then `TriggerRun` — flagged when the
   * project's monthly quota is used up, so the run is recorded and ends QUOTA_EXCEEDED in the same
   * append (and fails its parent if it asked to).
   */
  private async startRun(sql: SqlRunner, run: NewRun, now: Date, ctx: CommandContext): Promise<FlowRun | DomainError> {
    const exceededQuota = await quotaExceeded(sql, run.projectId, now, run.flow.monthlyRunQuota);
    // The payload is stored by the statement that records the run (one round trip for both).
    const ref = ExecutionDataStore.newRef();
    const data = triggeredData(run, ref);
    const appended = await appendWithRules(sql, run.runId, () => ({ type: 'TriggerRun', ...data, exceededQuota }), {
      now,
      traceparent: ctx.traceparent,
      create: { projectId: run.projectId, flowId: run.flow.flowId },
      alsoWrite: payloadWrites([{ run, ref }]),
    });
    if (isDomainError(appended)) return appended;
    return flowRunOf({ runId: run.runId, projectId: run.projectId, flowId: run.flow.flowId, data, created: now.toISOString() }, appended.state, now);
  }

  /**
   * `startRun` for many runs of projects without a quota (none is over one): every stream row,
   * event and trigger payload in one statement (`appendToNewRuns`). Answers in the order given.
   */
  private async startRuns(sql: SqlRunner, runs: readonly NewRun[], now: Date, opts: AppendOptions): Promise<(FlowRun | DomainError)[]> {
    if (runs.length === 0) return [];
    const started = new Map(runs.map((run) => [run.runId, { run, ref: ExecutionDataStore.newRef() }]));
    const data = runs.map((run) => triggeredData(run, (started.get(run.runId) as { ref: string }).ref));
    const appended = await appendToNewRuns(
      sql,
      runs.map((run, k) => ({
        runId: run.runId,
        meta: { projectId: run.projectId, flowId: run.flow.flowId },
        command: { type: 'TriggerRun', ...data[k], exceededQuota: null },
      })),
      opts,
      // The payloads of the runs that were accepted only.
      (accepted) => payloadWrites(accepted.map((runId) => started.get(runId) as { run: NewRun; ref: string })),
    );
    const results = await applyFailureRules(sql, appended, opts);
    return results.map((r, k) => {
      if (isDomainError(r)) return r;
      const run = runs[k];
      return flowRunOf({ runId: run.runId, projectId: run.projectId, flowId: run.flow.flowId, data: data[k], created: now.toISOString() }, r.state, now);
    });
  }

  /** Appends one command to a run, building it from the locked state (fenced when `ctx.workerId` is set). */
  async apply(runId: string, build: CommandBuilder, ctx: CommandContext = {}, projectId?: string): Promise<CommandResult | DomainError> {
    const now = ctx.now ?? this.clock();
    return this.inTx(async (sql) => {
      const r = await appendWithRules(sql, runId, fenced(sql, runId, ctx.workerId, now, build), {
        now,
        traceparent: ctx.traceparent,
        projectId,
      });
      return isDomainError(r) ? r : this.result(r);
    });
  }

  startStep(runId: string, stepName: string, stepType: string, ctx?: CommandContext) {
    return this.apply(runId, () => ({ type: 'StartStep', stepName, stepType }), ctx);
  }

  /** Records the step's outcome with a reference to its input/output/error (claim check), stored with it. */
  async finishStep(runId: string, stepName: string, req: FinishStepRequest, ctx: CommandContext = {}) {
    const now = ctx.now ?? this.clock();
    return this.inTx(async (sql) => {
      // The step data is stored by the statement that records the outcome: only when the report is
      // accepted and appends an event (a refusal or an idempotent repeat writes nothing).
      const alsoWrite: { text: string; params: unknown[] }[] = [];
      const build = (state: RunState): RunCommand => {
        const insert = ExecutionDataStore.insertOf({
          runId,
          kind: 'step',
          stepName,
          attempt: state.attempt,
          input: req.input,
          output: req.output,
          error: req.error,
        });
        alsoWrite.push(insert);
        return { type: 'CompleteStep', stepName, outcome: req.status, durationMs: req.durationMs, dataRef: insert.ref };
      };
      const r = await appendWithRules(sql, runId, fenced(sql, runId, ctx.workerId, now, build), {
        now,
        traceparent: ctx.traceparent,
        alsoWrite,
      });
      return isDomainError(r) ? r : this.result(r);
    });
  }

  /**
   * Many engines' reports in one transaction (`applyReports`): each report decided exactly as its
   * single endpoint decides it, each answered on its own.
   */
  report(reports: readonly EngineReport[], ctx: CommandContext = {}): Promise<ReportOutcome[] | DomainError> {
    const now = ctx.now ?? this.clock();
    return this.inTx((sql) =>
      applyReports(sql, reports, { now, traceparent: ctx.traceparent, pauseTimeoutSeconds: this.options.pauseTimeoutSeconds }),
    );
  }

  /** Pauses on a fresh request id; without a deadline, it expires `AP_PAUSE_TIMEOUT_SECONDS` from now. */
  async pause(runId: string, stepName: string, resumeDeadline: string | null, ctx: CommandContext = {}) {
    const now = ctx.now ?? this.clock();
    const requestId = newRequestId();
    const deadline = resumeDeadline ?? new Date(now.getTime() + this.options.pauseTimeoutSeconds * 1000).toISOString();
    const r = await this.apply(runId, () => ({ type: 'PauseRun', stepName, requestId, resumeDeadline: deadline }), { ...ctx, now });
    return isDomainError(r) ? r : { ...r, requestId, resumeDeadline: deadline };
  }

  succeed(runId: string, ctx?: CommandContext) {
    return this.apply(runId, () => ({ type: 'SucceedRun' }), ctx);
  }

  fail(runId: string, failedStepName: string | null, ctx?: CommandContext) {
    return this.apply(runId, () => ({ type: 'FailRun', failedStepName }), ctx);
  }

  timeOut(runId: string, reason: 'EXECUTION_TIME' | 'PAUSE_TIME' | 'WORKER_LOST', ctx?: CommandContext) {
    return this.apply(runId, () => ({ type: 'TimeOutRun', reason }), ctx);
  }

  failInternally(runId: string, reason: string, ctx?: CommandContext) {
    return this.apply(runId, () => ({ type: 'FailInternally', reason }), ctx);
  }

  /**
   * RUNNING/PAUSED → STOPPED, then every RUNNING/PAUSED descendant (children are runs triggered
   * with this run as their parent, to any depth), in one transaction. `stopped` counts the runs
   * that actually changed, this one included.
   */
  async stop(
    runId: string,
    req: { projectId?: string; reason: string },
    ctx: CommandContext = {},
  ): Promise<(CommandResult & { stopped: number }) | DomainError> {
    const now = ctx.now ?? this.clock();
    return this.inTx(async (sql) => {
      const r = await stopTree(sql, runId, req.reason, { now, traceparent: ctx.traceparent, projectId: req.projectId });
      return isDomainError(r) ? r : { ...this.result(r.root), stopped: r.stopped };
    });
  }

  /**
   * FROM_FAILED_STEP: a new attempt of the same run; answers the run. ON_LATEST_VERSION: in one
   * transaction, the original records the retry (it counts its attempts) and a new run of the
   * flow's latest version starts with a copy of the original trigger payload, `retryOf` linking it;
   * answers the new run.
   */
  async retry(runId: string, req: RetryRunRequest, ctx: CommandContext = {}): Promise<FlowRun | DomainError> {
    const now = ctx.now ?? this.clock();
    return this.inTx(async (sql) => {
      await holdAgainstPurge(sql, req.projectId);
      return this.retryIn(sql, runId, req, now, ctx);
    });
  }

  /**
   * The retry inside a caller's transaction, which holds the project against the purge already
   * (`holdAgainstPurge`); `guard` may refuse the run once its state is locked.
   */
  private async retryIn(
    sql: SqlRunner,
    runId: string,
    req: RetryRunRequest,
    now: Date,
    ctx: CommandContext,
    guard: StateGuard = () => null,
  ): Promise<FlowRun | DomainError> {
    const maxAttempts = this.options.maxRetryAttempts;
    const opts = { now, traceparent: ctx.traceparent, projectId: req.projectId };
    if (req.strategy === 'FROM_FAILED_STEP') {
      const r = await appendWithRules(
        sql,
        runId,
        (state) => guard(state) ?? { type: 'RetryRun', strategy: req.strategy, maxAttempts, newRunId: null },
        opts,
      );
      if (isDomainError(r)) return r;
      const triggered = await readTriggered(sql, runId);
      if (!triggered) return runNotFound(runId);
      return flowRunOf({ runId, ...triggered, created: triggered.time }, r.state, now);
    }
    const newRunId = uuidv7({ msecs: now.getTime() });
    const r = await appendWithRules(
      sql,
      runId,
      (state) => guard(state) ?? { type: 'RetryRun', strategy: req.strategy, maxAttempts, newRunId },
      opts,
    );
    if (isDomainError(r)) return r;
    const source = (await readRetrySources(sql, [runId])).get(runId);
    if (!source) return runNotFound(runId);
    const flow = await new FlowStore(sql).latest(r.meta.projectId, r.meta.flowId);
    if (!flow) return domainError('ENTITY_NOT_FOUND', { entityType: 'flow', entityId: r.meta.flowId, message: 'Flow not found' });
    const ref = source.triggerDataRef;
    if (ref === null || !source.payloadStored) return domainError('EXECUTION_DATA_PURGED', { entityType: 'flow_run', entityId: runId });
    return this.startRun(sql, retryRunOf(runId, r.meta.projectId, flow, source, newRunId, ref), now, ctx);
  }

  /**
   * Cancels, retries or archives every run of a project that the filter selects, a batch of
   * `bulkBatchSize` runs per transaction, paging by run id so memory stays at a few pages. Under its
   * lock each run must still be in one of the selected statuses (else it changed meanwhile and is
   * skipped); runs the action does not change (already archived, refused by the decider) are not
   * counted. A batch that fails rolls back alone: the batches before it stay done. Up to
   * `bulkPagesInFlight` pages are worked on at once.
   */
  async bulk(req: BulkRunRequest, ctx: CommandContext = {}): Promise<BulkRunResult | DomainError> {
    const statuses = bulkStatuses(req);
    const guard = inStatuses(statuses);
    const depth = Math.max(1, this.options.bulkPagesInFlight ?? 2);
    let examined = 0;
    let changed = 0;
    // The first page that was refused (a domain error) or threw; no page is read after it.
    let failure: { error: DomainError } | { thrown: unknown } | null = null;
    const inFlight: Promise<void>[] = [];
    // Up to `depth` pages' transactions at once, each started as soon as its page is read. The pages
    // hold different runs, so they lock different rows (a cancel's descendants may cross pages: a
    // deadlock between two pages is retried by inTransaction). The pages already started when one
    // fails still end, each committing or rolling back alone, as they did one after the other.
    try {
      for await (const page of selectBulkPages(this.tx, req.projectId, req.filter, statuses, this.options.bulkBatchSize)) {
        if (failure) break;
        const now = ctx.now ?? this.clock();
        inFlight.push(
          this.inTx((sql) => this.bulkBatch(sql, req, page, guard, now, ctx)).then(
            (n) => {
              if (!isDomainError(n)) {
                examined += page.length;
                changed += n;
              } else failure ??= { error: n };
            },
            (e: unknown) => void (failure ??= { thrown: e }),
          ),
        );
        if (inFlight.length >= depth) await inFlight.shift();
      }
    } finally {
      // Every started page ends before the answer (or the error) leaves.
      await Promise.all(inFlight);
    }
    const failed = failure as { error: DomainError } | { thrown: unknown } | null;
    if (failed && 'thrown' in failed) throw failed.thrown;
    if (failed) return failed.error;
    return { action: req.action, examined, changed };
  }

  /**
   * One page of a bulk operation, inside its transaction; answers how many runs changed. Cancel,
   * archive and FROM_FAILED_STEP retries are one command per run: set-based (`appendToRuns`).
   * ON_LATEST_VERSION starts a new run per original: set-based too (`retryOnLatestTogether`), run by
   * run for a project with a quota (each new run counts the ones before it).
   */
  private async bulkBatch(
    sql: SqlRunner,
    req: BulkRunRequest,
    page: readonly string[],
    guard: StateGuard,
    now: Date,
    ctx: CommandContext,
  ): Promise<number> {
    const opts = { now, traceparent: ctx.traceparent, projectId: req.projectId };
    const count = (results: readonly (AppendResult | DomainError)[]) =>
      results.filter((r): r is AppendResult => !isDomainError(r) && r.events.length > 0);
    switch (req.action) {
      case 'cancel': {
        const stopped = count(await appendManyWithRules(sql, page, (state) => guard(state) ?? { type: 'StopRun', reason: req.reason }, opts));
        await stopDescendants(sql, stopped.map((r) => r.runId), opts);
        return stopped.length;
      }
      case 'archive':
        return count(await appendManyWithRules(sql, page, (state) => guard(state) ?? { type: 'ArchiveRun' }, opts)).length;
      case 'retry': {
        // Before the page's rows are locked: the retries need their runs' execution data.
        await holdAgainstPurge(sql, req.projectId);
        if (req.strategy === 'FROM_FAILED_STEP') {
          const maxAttempts = this.options.maxRetryAttempts;
          const command = { type: 'RetryRun', strategy: req.strategy, maxAttempts, newRunId: null } as const;
          return count(await appendManyWithRules(sql, page, (state) => guard(state) ?? command, opts)).length;
        }
        const together = await this.retryOnLatestTogether(sql, page, guard, opts);
        if (together !== null) return together;
        let retried = 0;
        for (const runId of page) {
          // The new run is started after the original recorded the retry: a refusal past that point
          // (flow gone, payload purged) must undo the original's part without the rest of the batch.
          await sql.execute('savepoint bulk_retry');
          const r = await this.retryIn(sql, runId, req, now, ctx, guard);
          await sql.execute(isDomainError(r) ? 'rollback to savepoint bulk_retry' : 'release savepoint bulk_retry');
          if (!isDomainError(r)) retried++;
        }
        return retried;
      }
    }
  }

  /**
   * A page of ON_LATEST_VERSION retries with a few statements whatever its size: the originals are
   * locked, what each was triggered with, its flow's latest version and its payload are read for
   * all of them at once, and an original whose retry could not start its new run (flow gone, payload
   * purged) is refused before anything is written — where the run-by-run path records the retry and
   * rolls it back to a savepoint. Then every original records its retry in one statement and every
   * new run starts in one (`startRuns`). Null when the project has a quota: that page goes run by run.
   */
  private async retryOnLatestTogether(
    sql: SqlRunner,
    page: readonly string[],
    guard: StateGuard,
    opts: AppendOptions & { readonly projectId: string },
  ): Promise<number | null> {
    const rows = await lockStreams(sql, page, opts.projectId);
    const flows = await new FlowStore(sql).latestMany(rows.map((r) => ({ projectId: r.project_id, flowId: r.flow_id })));
    if ([...flows.values()].some((f) => f.monthlyRunQuota !== null)) return null;
    // Only whether each payload is there: the new runs' copies are made in Postgres, not through memory.
    const sources = await readRetrySources(sql, rows.map((r) => r.run_id));
    const rowOf = new Map(rows.map((r) => [r.run_id, r]));

    const maxAttempts = this.options.maxRetryAttempts;
    const newRuns = new Map<string, NewRun>();
    const appended = await appendToLockedRuns(
      sql,
      rows,
      (state, runId) => {
        const refused = guard(state);
        if (refused) return refused;
        const t = sources.get(runId);
        if (!t) return runNotFound(runId);
        const row = rowOf.get(runId) as StreamRow;
        const flow = flows.get(latestKey(row.project_id, row.flow_id));
        if (!flow) return domainError('ENTITY_NOT_FOUND', { entityType: 'flow', entityId: row.flow_id, message: 'Flow not found' });
        const payloadRef = t.triggerDataRef;
        if (payloadRef === null || !t.payloadStored) return domainError('EXECUTION_DATA_PURGED', { entityType: 'flow_run', entityId: runId });
        const newRunId = uuidv7({ msecs: opts.now.getTime() });
        newRuns.set(runId, retryRunOf(runId, row.project_id, flow, t, newRunId, payloadRef));
        return { type: 'RetryRun', strategy: 'ON_LATEST_VERSION', maxAttempts, newRunId };
      },
      opts,
    );
    const retried = (await applyFailureRules(sql, appended, opts)).filter((r): r is AppendResult => !isDomainError(r) && r.events.length > 0);
    const started = await this.startRuns(
      sql,
      retried.map((r) => newRuns.get(r.runId) as NewRun),
      opts.now,
      { now: opts.now, traceparent: opts.traceparent },
    );
    const refusal = started.find(isDomainError);
    // A new run's first command is never refused; if one were, the page must not keep half a retry.
    if (refusal) throw new Rollback(refusal);
    return retried.length;
  }

  /**
   * Resumes a PAUSED run waiting on `requestId`; the body is stored (execution data, kind
   * `resume`) and becomes the paused step's output. No project: the request id is the capability,
   * so a request id the run did not issue is answered alike for every run id, one that exists
   * nowhere included (`requestNotIssued`): the keyless route tells no one which runs exist.
   */
  async resume(runId: string, requestId: string, body: unknown, ctx: CommandContext = {}): Promise<ResumeResult | DomainError> {
    const now = ctx.now ?? this.clock();
    const output = body ?? null;
    return this.inTx(async (sql) => {
      // The body is stored by the statement that records the resume, so a refused resume (wrong,
      // used or expired request id, a run not paused) writes nothing at all.
      const alsoWrite: { text: string; params: unknown[] }[] = [];
      const r = await appendWithRules(
        sql,
        runId,
        (state) => {
          // No stream row: a run that does not exist issued no request id. Answered here as the
          // decider answers any id a run did not issue, not with the append path's ENTITY_NOT_FOUND.
          if (!state.exists) return requestNotIssued(requestId);
          const insert = ExecutionDataStore.insertOf({
            runId,
            kind: 'resume',
            stepName: state.pause?.stepName ?? null,
            attempt: state.attempt,
            input: undefined,
            output,
            error: undefined,
          });
          alsoWrite.push(insert);
          return { type: 'ResumeRun', requestId, dataRef: insert.ref };
        },
        { now, traceparent: ctx.traceparent, alsoWrite },
      );
      if (isDomainError(r)) return r;
      const resumed = r.events.find((e) => e.type === 'flowrun.resumed.v1');
      return { runId, stepName: String(resumed?.data.stepName), output };
    });
  }

  // ---- Retention ----

  /** One batch of the retention purge at `window.now`, after `after` when given (see `purgeExpiredBatch`). */
  purgeExpired(window: RetentionWindow, limit: number, ctx: CommandContext = {}, after: PurgeCursor | null = null): Promise<PurgeBatchOutcome | DomainError> {
    const now = ctx.now ?? this.clock();
    return this.inTx((sql) => purgeExpiredBatch(sql, window, limit, { now, traceparent: ctx.traceparent }, after));
  }

  /** What a purge at `window.now` would take, changing nothing. */
  retentionPlan(window: RetentionWindow): Promise<{ runs: number; bytes: number } | DomainError> {
    return this.inTx((sql) => retentionPlan(sql, window));
  }

  /**
   * Erases one finished run's execution data now (a privacy request), recorded as retention's
   * purge is; its metadata stays. Erasing an erased run changes nothing (`eventsAppended` 0).
   */
  erase(runId: string, projectId: string, ctx: CommandContext = {}): Promise<(CommandResult & PurgeOutcome) | DomainError> {
    const now = ctx.now ?? this.clock();
    return this.inTx(async (sql) => {
      await holdAgainstPurge(sql, projectId);
      const { outcome, results } = await purgeRuns(sql, [runId], 'ERASE', { now, traceparent: ctx.traceparent, projectId });
      const r = results[0];
      if (!r) return runNotFound(runId);
      return isDomainError(r) ? r : { ...this.result(r), ...outcome };
    });
  }

  /** The run's version and status in the write model; another project's run is not found. */
  head(projectId: string, runId: string): Promise<RunHead | DomainError> {
    return this.inTx(async (sql) => {
      const stream = await readStream(sql, runId);
      if (!stream || stream.projectId !== projectId || stream.state.status === null) return runNotFound(runId);
      return { runId, version: stream.version, status: stream.state.status };
    });
  }

  /** What an engine needs to drive a run: its flow version's steps, trigger payload and results so far. */
  execution(runId: string): Promise<RunExecution | DomainError> {
    return this.inTx(async (sql) => {
      const stream = await readStream(sql, runId);
      const triggered = stream && (await readTriggered(sql, runId));
      if (!stream || !triggered) return runNotFound(runId);
      const { state } = stream;
      const steps = (await new FlowStore(sql).versionSteps(triggered.data.flowVersionId)) ?? [];
      const triggerRef = triggered.data.triggerDataRef;
      const refs = [
        ...(triggerRef ? [triggerRef] : []),
        ...Object.values(state.steps)
          .filter((s) => s.status === 'SUCCEEDED' && s.dataRef)
          .map((s) => s.dataRef as string),
      ];
      const records = state.purged ? new Map() : await new ExecutionDataStore(sql).getMany(refs);
      const results: RunExecution['results'] = {};
      for (const [name, step] of Object.entries(state.steps)) {
        const record = step.status === 'SUCCEEDED' && step.dataRef ? records.get(step.dataRef) : undefined;
        results[name] = {
          status: step.status,
          attempt: step.attempt,
          ...(record ? { output: record.output ?? null } : {}),
        };
      }
      return {
        runId,
        projectId: stream.projectId,
        flowId: stream.flowId,
        flowVersionId: triggered.data.flowVersionId,
        status: state.status ?? 'RUNNING',
        attempt: state.attempt,
        startTime: triggered.time,
        parentRunId: triggered.data.parentRunId,
        failParentOnFailure: triggered.data.failParentOnFailure,
        steps,
        trigger: state.purged || !triggerRef ? null : (records.get(triggerRef)?.output ?? null),
        results,
        pause: state.pause ? { requestId: state.pause.requestId, stepName: state.pause.stepName } : null,
        purged: state.purged,
      };
    });
  }

  // ---- Engine leases ----

  acquireLease(runId: string, workerId: string, ttlMs: number, ctx: CommandContext = {}): Promise<LeaseResult | DomainError> {
    const now = ctx.now ?? this.clock();
    return this.inTx(async (sql) => (await new LeaseStore(sql).acquire(runId, workerId, ttlMs, now)) ?? runNotFound(runId));
  }

  releaseLease(runId: string, workerId: string): Promise<{ released: boolean } | DomainError> {
    return this.inTx(async (sql) => ({ released: await new LeaseStore(sql).release(runId, workerId) }));
  }

  claimExpired(workerId: string, ttlMs: number, limit: number, ctx: CommandContext = {}): Promise<{ runIds: string[] } | DomainError> {
    const now = ctx.now ?? this.clock();
    return this.inTx(async (sql) => ({ runIds: await new LeaseStore(sql).claimExpired(workerId, ttlMs, limit, now) }));
  }
}

const runNotFound = (runId: string): DomainError =>
  domainError('ENTITY_NOT_FOUND', { entityType: 'flow_run', entityId: runId, message: 'Flow run not found' });

/** Refuses a run, once its state is locked, with the error to answer (null: go on). */
type StateGuard = (state: RunState) => DomainError | null;

/**
 * Stops a run (RUNNING/PAUSED → STOPPED) and then every RUNNING/PAUSED descendant, in the caller's
 * transaction. `stopped` counts the runs that actually changed, the root included.
 */
async function stopTree(
  sql: SqlRunner,
  runId: string,
  reason: string,
  opts: AppendOptions,
): Promise<{ root: AppendResult; stopped: number } | DomainError> {
  const root = await appendWithRules(sql, runId, () => ({ type: 'StopRun', reason }), opts);
  if (isDomainError(root)) return root;
  if (root.events.length === 0) return { root, stopped: 0 };
  return { root, stopped: 1 + (await stopDescendants(sql, [runId], opts)) };
}

/**
 * Stops every RUNNING/PAUSED descendant of the given (just stopped) runs — children are runs
 * triggered with a run as their parent, to any depth — each with its stopped ancestor in the
 * reason. Answers how many changed; one that ended meanwhile is refused by the decider and not
 * counted.
 */
async function stopDescendants(sql: SqlRunner, rootIds: readonly string[], opts: AppendOptions): Promise<number> {
  // Level by level (each level one indexed lookup on parent_run_id), following every child, as a
  // stopped or finished child may still have running children of its own.
  const rootOf = new Map<string, string>();
  let level = rootIds.map((id) => ({ run_id: id, root_id: id }));
  while (level.length > 0) {
    const rootOfParent = new Map(level.map((r) => [r.run_id, r.root_id]));
    const children = await sql.execute<{ run_id: string; parent_run_id: string; status: string }>(
      'select run_id, parent_run_id, status from run_streams where parent_run_id in (?)',
      [[...rootOfParent.keys()]],
    );
    level = children.map((c) => ({ run_id: c.run_id, root_id: rootOfParent.get(c.parent_run_id) as string }));
    for (const c of children) if (c.status === 'RUNNING' || c.status === 'PAUSED') rootOf.set(c.run_id, rootOfParent.get(c.parent_run_id) as string);
  }
  if (rootOf.size === 0) return 0;
  const results = await appendManyWithRules(
    sql,
    [...rootOf.keys()],
    (_state, id) => ({ type: 'StopRun', reason: `ancestor run ${rootOf.get(id)} stopped` }),
    { now: opts.now, traceparent: opts.traceparent },
  );
  return results.filter((r) => !isDomainError(r) && r.events.length > 0).length;
}

/** First instant of `now`'s calendar month, UTC. */
export const monthStartUtc = (now: Date): Date => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));

/**
 * The project's monthly quota if it is used up (runs created this calendar month, UTC, including
 * runs recorded as QUOTA_EXCEEDED), else null. A project with a quota is locked for the rest of the
 * transaction, so concurrent triggers count one after the other and never overshoot; projects
 * without a quota take no lock. The count stops at the quota, so it costs at most `quota` index rows.
 */
export async function quotaExceeded(sql: SqlRunner, projectId: string, now: Date, knownQuota?: number | null): Promise<number | null> {
  // The quota as read with the flow (`FlowStore.latest`), else read here; re-read under the lock below.
  const unlocked =
    knownQuota !== undefined
      ? knownQuota
      : (await sql.execute<{ monthly_run_quota: number | null }>('select monthly_run_quota from projects where id = ?', [projectId]))[0]
          ?.monthly_run_quota;
  if (unlocked == null) return null;
  const locked = await sql.execute<{ monthly_run_quota: number | null }>(
    'select monthly_run_quota from projects where id = ? for update',
    [projectId],
  );
  const quota = locked[0]?.monthly_run_quota;
  if (quota == null) return null;
  const rows = await sql.execute<{ n: number }>(
    `select count(*)::int as n from (
       select 1 from run_streams where project_id = ? and created_at >= ? limit ?
     ) recent`,
    [projectId, monthStartUtc(now), quota],
  );
  return rows[0].n >= quota ? quota : null;
}

/** The public representation of a run, from its trigger and its current state. */
export function flowRunOf(
  run: {
    runId: string;
    projectId: string;
    flowId: string;
    data: RunEventData<'flowrun.triggered.v1'>;
    created: string;
  },
  state: RunState,
  now: Date,
): FlowRun {
  const status = state.status ?? 'RUNNING';
  return {
    id: run.runId,
    projectId: run.projectId,
    flowId: run.flowId,
    flowVersionId: run.data.flowVersionId,
    flowVersion: { displayName: run.data.flowDisplayName },
    status,
    startTime: run.created,
    // Only answers given at the moment a run ends (a trigger over quota) carry a finish time.
    finishTime: isTerminal(status) ? now.toISOString() : null,
    environment: run.data.environment,
    triggeredBy: run.data.triggeredBy,
    tags: [...run.data.tags],
    stepsCount: run.data.stepsCount,
    failedStepName: state.failedStepName,
    parentRunId: run.data.parentRunId,
    retryOf: run.data.retryOf,
    attempt: state.attempt,
    pause: state.pause ? { requestId: state.pause.requestId, stepName: state.pause.stepName } : null,
    archivedAt: null,
    executionDataPurgedAt: null,
    created: run.created,
  };
}

/** The public representation of a run just triggered (the view shows the same once projected). */
export function toFlowRun(
  runId: string,
  projectId: string,
  flowId: string,
  data: RunEventData<'flowrun.triggered.v1'>,
  state: RunState,
  now: Date,
): FlowRun {
  return flowRunOf({ runId, projectId, flowId, data, created: now.toISOString() }, state, now);
}
