import { randomBytes } from 'node:crypto';
import {
  domainError,
  isDomainError,
  type CommandResult,
  type DomainError,
  type FinishStepRequest,
  type FlowRun,
  type RunEventData,
  type TriggerRunRequest,
} from '@flowruns/contracts';
import { ExecutionDataStore } from '@flowruns/execution-data';
import type { RunCommand, RunState } from '@flowruns/run-domain';
import { v7 as uuidv7 } from 'uuid';
import { FlowStore } from './flows';
import { appendToRun, readStream, type AppendResult, type CommandBuilder } from './run-store';
import type { SqlRunner } from './sql';

/** Runs a unit of work in one Postgres transaction (MikroORM's `em.transactional` in the app). */
export interface Transactor {
  transactional<T>(work: (sql: SqlRunner) => Promise<T>): Promise<T>;
}

class Rollback extends Error {
  constructor(readonly error: DomainError) {
    super(error.code);
  }
}

export interface CommandContext {
  readonly traceparent?: string | null;
  readonly now?: Date;
}

/** A fresh, unguessable resume request id (192 random bits). */
export const newRequestId = (): string => `req_${randomBytes(24).toString('base64url')}`;

/**
 * The command service's use cases. Each runs in one transaction: claim-checked data, the decision
 * and the appended events commit together or not at all.
 */
export class RunCommands {
  constructor(
    private readonly tx: Transactor,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Runs `work`; a DomainError it returns rolls the transaction back and is returned. */
  private async inTx<T>(work: (sql: SqlRunner) => Promise<T | DomainError>): Promise<T | DomainError> {
    try {
      return await this.tx.transactional(async (sql) => {
        const r = await work(sql);
        if (isDomainError(r)) throw new Rollback(r);
        return r;
      });
    } catch (e) {
      if (e instanceof Rollback) return e.error;
      throw e;
    }
  }

  private result(r: AppendResult): CommandResult {
    return { runId: r.runId, version: r.version, status: r.state.status, eventsAppended: r.events.length };
  }

  /** Starts a run of the flow's latest version with the trigger payload. */
  async trigger(flowId: string, req: TriggerRunRequest, ctx: CommandContext = {}): Promise<FlowRun | DomainError> {
    const now = ctx.now ?? this.clock();
    return this.inTx(async (sql) => {
      const flow = await new FlowStore(sql).latest(req.projectId, flowId);
      if (!flow) return domainError('ENTITY_NOT_FOUND', { entityType: 'flow', entityId: flowId, message: 'Flow not found' });
      if (req.parentRunId !== null) {
        const parent = await readStream(sql, req.parentRunId);
        if (!parent || parent.projectId !== req.projectId) {
          return domainError('ENTITY_NOT_FOUND', {
            entityType: 'flow_run',
            entityId: req.parentRunId,
            field: 'ap-parent-run-id',
            message: 'Parent flow run not found',
          });
        }
      }
      const runId = uuidv7({ msecs: now.getTime() });
      const triggerDataRef = await new ExecutionDataStore(sql).put({
        runId,
        kind: 'trigger',
        stepName: null,
        attempt: null,
        input: undefined,
        output: req.payload ?? null,
        error: undefined,
      });
      const data: RunEventData<'flowrun.triggered.v1'> = {
        flowVersionId: flow.versionId,
        flowDisplayName: flow.versionDisplayName,
        environment: req.environment,
        triggeredBy: req.triggeredBy,
        tags: [...flow.tags],
        stepsCount: flow.steps.length,
        parentRunId: req.parentRunId,
        failParentOnFailure: req.failParentOnFailure,
        retryOf: null,
        triggerDataRef,
        logsFileId: null,
      };
      const appended = await appendToRun(sql, runId, () => ({ type: 'TriggerRun', ...data }), {
        now,
        traceparent: ctx.traceparent,
        create: { projectId: req.projectId, flowId },
      });
      if (isDomainError(appended)) return appended;
      return toFlowRun(runId, req.projectId, flowId, data, appended.state, now);
    });
  }

  /** Appends one command to a run, building it from the locked state. */
  async apply(runId: string, build: CommandBuilder, ctx: CommandContext = {}): Promise<CommandResult | DomainError> {
    const now = ctx.now ?? this.clock();
    return this.inTx(async (sql) => {
      const r = await appendToRun(sql, runId, build, { now, traceparent: ctx.traceparent });
      return isDomainError(r) ? r : this.result(r);
    });
  }

  startStep(runId: string, stepName: string, stepType: string, ctx?: CommandContext) {
    return this.apply(runId, () => ({ type: 'StartStep', stepName, stepType }), ctx);
  }

  /** Stores the step's input/output/error (claim check), then records the outcome with its reference. */
  async finishStep(runId: string, stepName: string, req: FinishStepRequest, ctx: CommandContext = {}) {
    const now = ctx.now ?? this.clock();
    return this.inTx(async (sql) => {
      let dataRef: string | undefined;
      const r = await appendToRun(
        sql,
        runId,
        async (state: RunState): Promise<RunCommand> => {
          dataRef = await new ExecutionDataStore(sql).put({
            runId,
            kind: 'step',
            stepName,
            attempt: state.attempt,
            input: req.input,
            output: req.output,
            error: req.error,
          });
          return { type: 'CompleteStep', stepName, outcome: req.status, durationMs: req.durationMs, dataRef };
        },
        { now, traceparent: ctx.traceparent },
      );
      if (isDomainError(r)) return r;
      // An idempotent repeat appended nothing: the record written for it is not referenced.
      if (r.events.length === 0 && dataRef) await sql.execute('delete from execution_data where ref = ?', [dataRef]);
      return this.result(r);
    });
  }

  async pause(runId: string, stepName: string, resumeDeadline: string | null, ctx?: CommandContext) {
    const requestId = newRequestId();
    const r = await this.apply(runId, () => ({ type: 'PauseRun', stepName, requestId, resumeDeadline }), ctx);
    return isDomainError(r) ? r : { ...r, requestId };
  }

  succeed(runId: string, ctx?: CommandContext) {
    return this.apply(runId, () => ({ type: 'SucceedRun' }), ctx);
  }

  fail(runId: string, failedStepName: string | null, ctx?: CommandContext) {
    return this.apply(runId, () => ({ type: 'FailRun', failedStepName }), ctx);
  }
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
  return {
    id: runId,
    projectId,
    flowId,
    flowVersionId: data.flowVersionId,
    flowVersion: { displayName: data.flowDisplayName },
    status: state.status ?? 'RUNNING',
    startTime: now.toISOString(),
    finishTime: null,
    environment: data.environment,
    triggeredBy: data.triggeredBy,
    tags: [...data.tags],
    stepsCount: data.stepsCount,
    failedStepName: null,
    parentRunId: data.parentRunId,
    retryOf: data.retryOf,
    attempt: state.attempt,
    pause: null,
    archivedAt: null,
    executionDataPurgedAt: null,
    created: now.toISOString(),
  };
}
