import { domainError, RETRYABLE_FROM_FAILED_STEP, type DomainError, type FlowRunStatus, type RunEvent } from '@flowruns/contracts';
import type { RunCommand } from './commands';
import { initialState, type ClosedRequest, type RunState } from './state';
import { ACCEPTED_IN, type FromStatus } from './transitions';

export interface DecisionContext {
  readonly runId: string;
  readonly now: Date;
}

export type Decision = readonly RunEvent[] | DomainError;

const assertNever = (x: never): never => {
  throw new Error(`unhandled variant: ${JSON.stringify(x)}`);
};

const pauseExpired = (requestId: string, resumeDeadline: string | null): DomainError =>
  domainError('PAUSE_EXPIRED', {
    entityType: 'flow_run_request',
    entityId: requestId,
    ...(resumeDeadline ? { resumeDeadline } : {}),
    message: 'the resume request expired',
  });

/**
 * The answer to a resume request id the run did not issue: the same for every run, whether it
 * exists or not and whatever its status, so that it tells the caller nothing but "not this id".
 */
export const requestNotIssued = (requestId: string): DomainError =>
  domainError('PAUSE_REQUEST_MISMATCH', { entityType: 'flow_run_request', entityId: requestId });

/** Whether the run issued this resume request id: it waits on it now, or did once. */
export const issuedRequest = (state: RunState, requestId: string): boolean =>
  state.pause?.requestId === requestId || state.requests?.[requestId] !== undefined;

const msBetween = (fromIso: string | null, now: Date): number =>
  fromIso === null ? 0 : Math.max(0, now.getTime() - new Date(fromIso).getTime());

/**
 * Decides what a command does to a run: the events to append (possibly none, for a command that
 * is already satisfied) or a domain error. Pure: time and ids come in through the command and ctx.
 */
export function decide(command: RunCommand, state: RunState, ctx: DecisionContext): Decision {
  const from: FromStatus = state.exists && state.status !== null ? state.status : 'NONE';
  // The request id is the capability of the keyless resume routes. An id this run did not issue is
  // answered first, and alike for every run (none at all included): its holder learns neither that
  // the run exists, nor its status, nor that it waits on another id. Only the holder of an id the
  // run did issue is told more: used once already (single-use), expired, or that the run no longer
  // waits on it (the table's INVALID_TRANSITION, naming its status).
  if (command.type === 'ResumeRun') {
    if (!issuedRequest(state, command.requestId)) return requestNotIssued(command.requestId);
    const closed = state.requests?.[command.requestId];
    if (closed === 'RESUMED') {
      return domainError('PAUSE_REQUEST_MISMATCH', {
        entityType: 'flow_run_request',
        entityId: command.requestId,
        reason: 'ALREADY_USED',
      });
    }
    if (closed === 'EXPIRED') return pauseExpired(command.requestId, null);
    // ABANDONED: the run stopped waiting on it without a resume (cancelled, failed, internal error).
    if (closed === 'ABANDONED') {
      return domainError('INVALID_TRANSITION', { entityType: 'flow_run', entityId: ctx.runId, status: from, command: command.type });
    }
  }
  if (from === 'NONE' && command.type !== 'TriggerRun') {
    return domainError('ENTITY_NOT_FOUND', { entityType: 'flow_run', entityId: ctx.runId });
  }
  if (command.type === 'TriggerRun' && from !== 'NONE') {
    return domainError('RUN_ALREADY_EXISTS', { entityType: 'flow_run', entityId: ctx.runId });
  }
  // Idempotent no-ops come before the table: archiving twice or purging twice changes nothing.
  if (command.type === 'ArchiveRun' && state.archived) return [];
  if (command.type === 'PurgeExecutionData' && state.purged && !command.range) return [];

  if (!ACCEPTED_IN[command.type].has(from)) {
    return domainError('INVALID_TRANSITION', {
      entityType: 'flow_run',
      entityId: ctx.runId,
      status: from,
      command: command.type,
    });
  }

  switch (command.type) {
    case 'TriggerRun': {
      const triggered: RunEvent = {
        type: 'flowrun.triggered.v1',
        data: {
          flowVersionId: command.flowVersionId,
          flowDisplayName: command.flowDisplayName,
          environment: command.environment,
          triggeredBy: command.triggeredBy,
          tags: [...command.tags],
          stepsCount: command.stepsCount,
          parentRunId: command.parentRunId,
          failParentOnFailure: command.failParentOnFailure,
          retryOf: command.retryOf,
          triggerDataRef: command.triggerDataRef,
          logsFileId: command.logsFileId,
        },
      };
      const quota = command.exceededQuota ?? null;
      return quota === null ? [triggered] : [triggered, { type: 'flowrun.quota-exceeded.v1', data: { quota } }];
    }
    case 'StartStep': {
      const step = state.steps[command.stepName];
      if (step?.status === 'SUCCEEDED') {
        return domainError('STEP_ALREADY_FINISHED', { stepName: command.stepName, status: step.status });
      }
      if (step?.status === 'RUNNING' && step.attempt === state.attempt) return [];
      return [
        {
          type: 'flowrun.step.started.v1',
          data: { stepName: command.stepName, stepType: command.stepType, attempt: state.attempt },
        },
      ];
    }
    case 'CompleteStep': {
      const step = state.steps[command.stepName];
      if (step && step.attempt === state.attempt && step.status === command.outcome) return [];
      if (!step || step.status !== 'RUNNING' || step.attempt !== state.attempt) {
        return domainError('STEP_NOT_RUNNING', {
          stepName: command.stepName,
          status: step?.status ?? null,
        });
      }
      const data = {
        stepName: command.stepName,
        stepType: step.type,
        attempt: state.attempt,
        durationMs: command.durationMs,
        dataRef: command.dataRef,
      };
      return [
        command.outcome === 'SUCCEEDED'
          ? { type: 'flowrun.step.succeeded.v1', data }
          : { type: 'flowrun.step.failed.v1', data },
      ];
    }
    case 'PauseRun':
      return [
        {
          type: 'flowrun.paused.v1',
          data: {
            stepName: command.stepName,
            requestId: command.requestId,
            resumeDeadline: command.resumeDeadline,
          },
        },
      ];
    case 'ResumeRun':
      // Only an id the run issued gets here (checked first), and a PAUSED run's open request is the
      // only one not closed: so this is the id it waits on. Kept as the guard `state.pause` needs.
      if (state.pause === null || state.pause.requestId !== command.requestId) return requestNotIssued(command.requestId);
      // The deadline is a rule of the run, not of a timer: a resume past it is refused even if the
      // supervisor has not yet timed the run out.
      if (state.pause.resumeDeadline && ctx.now.getTime() >= new Date(state.pause.resumeDeadline).getTime()) {
        return pauseExpired(command.requestId, state.pause.resumeDeadline);
      }
      return [
        {
          type: 'flowrun.resumed.v1',
          data: { stepName: state.pause.stepName, requestId: command.requestId, dataRef: command.dataRef },
        },
      ];
    case 'SucceedRun':
      return [{ type: 'flowrun.succeeded.v1', data: { durationMs: msBetween(state.startTime, ctx.now) } }];
    case 'FailRun':
      return [
        {
          type: 'flowrun.failed.v1',
          data: { failedStepName: command.failedStepName, durationMs: msBetween(state.startTime, ctx.now) },
        },
      ];
    case 'StopRun':
      return [{ type: 'flowrun.stopped.v1', data: { reason: command.reason } }];
    case 'TimeOutRun':
      return [{ type: 'flowrun.timed-out.v1', data: { reason: command.reason } }];
    case 'ExceedQuota':
      return [{ type: 'flowrun.quota-exceeded.v1', data: { quota: command.quota } }];
    case 'FailInternally':
      return [{ type: 'flowrun.internal-error.v1', data: { reason: command.reason } }];
    case 'RetryRun': {
      if (state.archived) return domainError('RUN_ARCHIVED', { entityType: 'flow_run', entityId: ctx.runId });
      if (command.strategy === 'FROM_FAILED_STEP' && !RETRYABLE_FROM_FAILED_STEP.has(from as FlowRunStatus)) {
        return domainError('INVALID_TRANSITION', {
          entityType: 'flow_run',
          entityId: ctx.runId,
          status: state.status,
          command: 'RetryRun',
          strategy: command.strategy,
        });
      }
      // Both strategies need execution data: the failed step's inputs, or the trigger payload.
      if (state.purged) {
        return domainError('EXECUTION_DATA_PURGED', { entityType: 'flow_run', entityId: ctx.runId });
      }
      if (1 + state.retryCount >= command.maxAttempts) {
        return domainError('MAX_ATTEMPTS_REACHED', {
          entityType: 'flow_run',
          entityId: ctx.runId,
          attempts: 1 + state.retryCount,
          maxAttempts: command.maxAttempts,
        });
      }
      if (command.strategy === 'ON_LATEST_VERSION') {
        if (command.newRunId === null) {
          return domainError('VALIDATION', { field: 'newRunId', message: 'required for ON_LATEST_VERSION' });
        }
        return [
          {
            type: 'flowrun.retried.v1',
            data: { strategy: command.strategy, attempt: state.attempt, fromStepName: null, newRunId: command.newRunId },
          },
        ];
      }
      return [
        {
          type: 'flowrun.retried.v1',
          data: {
            strategy: command.strategy,
            attempt: state.attempt + 1,
            fromStepName: state.failedStepName,
            newRunId: null,
          },
        },
      ];
    }
    case 'ArchiveRun':
      return [{ type: 'flowrun.archived.v1', data: {} }];
    case 'PurgeExecutionData':
      if (command.range) {
        const { from, through, runs } = command.range;
        if (through.runId !== ctx.runId) return domainError('VALIDATION', { field: 'range.through', message: 'a range ends at the run it is recorded on' });
        const data = { reason: 'RETENTION' as const, fromFinishedAt: from?.finishedAt ?? null, fromRunId: from?.runId ?? null, throughFinishedAt: through.finishedAt, runs };
        return [{ type: 'flowrun.execution-data-purged-through.v1', data }];
      }
      return [{ type: 'flowrun.execution-data-purged.v1', data: { reason: command.reason } }];
    default:
      return assertNever(command);
  }
}

/** The run no longer waits on its pause (if any): the request is recorded closed, `as` what. */
const closePause = (state: RunState, as: ClosedRequest): RunState =>
  state.pause
    ? { ...state, pause: null, requests: { ...state.requests, [state.pause.requestId]: as } }
    : { ...state, pause: null };

/** Applies one event to the state. Total over every event type; never fails. */
export function evolve(state: RunState, event: RunEvent, time: string): RunState {
  switch (event.type) {
    case 'flowrun.triggered.v1':
      return { ...initialState(), exists: true, status: 'RUNNING', attempt: 1, startTime: time, runningSince: time };
    case 'flowrun.step.started.v1':
      return {
        ...state,
        steps: {
          ...state.steps,
          [event.data.stepName]: { type: event.data.stepType, status: 'RUNNING', attempt: event.data.attempt },
        },
      };
    case 'flowrun.step.succeeded.v1':
    case 'flowrun.step.failed.v1':
      return {
        ...state,
        steps: {
          ...state.steps,
          [event.data.stepName]: {
            type: event.data.stepType,
            status: event.type === 'flowrun.step.succeeded.v1' ? 'SUCCEEDED' : 'FAILED',
            attempt: event.data.attempt,
            dataRef: event.data.dataRef,
          },
        },
      };
    case 'flowrun.paused.v1': {
      const step = state.steps[event.data.stepName];
      return {
        ...state,
        status: 'PAUSED',
        pause: {
          requestId: event.data.requestId,
          stepName: event.data.stepName,
          resumeDeadline: event.data.resumeDeadline,
        },
        steps: step
          ? { ...state.steps, [event.data.stepName]: { ...step, status: 'PAUSED' } }
          : state.steps,
      };
    }
    case 'flowrun.resumed.v1': {
      const step = state.steps[event.data.stepName];
      return {
        ...state,
        status: 'RUNNING',
        runningSince: time,
        pause: null,
        requests: { ...state.requests, [event.data.requestId]: 'RESUMED' },
        steps: step
          ? { ...state.steps, [event.data.stepName]: { ...step, status: 'SUCCEEDED', dataRef: event.data.dataRef } }
          : state.steps,
      };
    }
    case 'flowrun.succeeded.v1':
      return { ...state, status: 'SUCCEEDED' };
    // A run that ends while it waits closes its request: the id is still one the run issued, so its
    // holder is told the run no longer waits on it (or, timed out, that it expired), not "unknown".
    case 'flowrun.failed.v1':
      return { ...closePause(state, 'ABANDONED'), status: 'FAILED', failedStepName: event.data.failedStepName };
    case 'flowrun.stopped.v1':
      return { ...closePause(state, 'ABANDONED'), status: 'STOPPED' };
    case 'flowrun.timed-out.v1':
      return { ...closePause(state, 'EXPIRED'), status: 'TIMEOUT' };
    case 'flowrun.quota-exceeded.v1':
      return { ...state, status: 'QUOTA_EXCEEDED' };
    case 'flowrun.internal-error.v1':
      return { ...closePause(state, 'ABANDONED'), status: 'INTERNAL_ERROR' };
    case 'flowrun.retried.v1':
      if (event.data.strategy === 'ON_LATEST_VERSION') return { ...state, retryCount: state.retryCount + 1 };
      return {
        ...state,
        status: 'RUNNING',
        runningSince: time,
        attempt: event.data.attempt,
        retryCount: state.retryCount + 1,
        failedStepName: null,
      };
    case 'flowrun.archived.v1':
      return { ...state, archived: true };
    case 'flowrun.execution-data-purged.v1':
    case 'flowrun.execution-data-purged-through.v1':
      return { ...state, purged: true };
    default:
      return assertNever(event);
  }
}

/** Folds a history into a state (used by tests and by a snapshot rebuild). */
export const fold = (events: readonly { event: RunEvent; time: string }[]): RunState =>
  events.reduce((s, e) => evolve(s, e.event, e.time), initialState());
