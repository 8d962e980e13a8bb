import { isDomainError, type ErrorCode, type RunEvent } from '@flowruns/contracts';
import type { RunCommand } from './commands';
import { decide, evolve } from './decider';
import { initialState, type RunState } from './state';

/** Test vocabulary for the decider: given these events, when this command, then these events or this error. */
export const RUN_ID = 'run_1';
export const NOW = new Date('2026-01-15T10:30:00.000Z');

export const ev = {
  triggered: (): RunEvent => ({
    type: 'flowrun.triggered.v1',
    data: {
      flowVersionId: 'v1',
      flowDisplayName: 'Flow',
      environment: 'PRODUCTION',
      triggeredBy: null,
      tags: [],
      stepsCount: 2,
      parentRunId: null,
      failParentOnFailure: false,
      retryOf: null,
      triggerDataRef: 'exd_t',
      logsFileId: null,
    },
  }),
  stepStarted: (stepName: string, attempt = 1): RunEvent => ({
    type: 'flowrun.step.started.v1',
    data: { stepName, stepType: 'http', attempt },
  }),
  stepSucceeded: (stepName: string, attempt = 1): RunEvent => ({
    type: 'flowrun.step.succeeded.v1',
    data: { stepName, stepType: 'http', attempt, durationMs: 5, dataRef: `exd_${stepName}` },
  }),
  stepFailed: (stepName: string, attempt = 1): RunEvent => ({
    type: 'flowrun.step.failed.v1',
    data: { stepName, stepType: 'http', attempt, durationMs: 5, dataRef: `exd_${stepName}` },
  }),
  paused: (stepName = 'approve', requestId = 'req_1'): RunEvent => ({
    type: 'flowrun.paused.v1',
    data: { stepName, requestId, resumeDeadline: null },
  }),
  succeeded: (): RunEvent => ({ type: 'flowrun.succeeded.v1', data: { durationMs: 10 } }),
  failed: (failedStepName: string | null = 'b'): RunEvent => ({ type: 'flowrun.failed.v1', data: { failedStepName, durationMs: 10 } }),
  stopped: (): RunEvent => ({ type: 'flowrun.stopped.v1', data: { reason: 'by user' } }),
  timedOut: (): RunEvent => ({ type: 'flowrun.timed-out.v1', data: { reason: 'EXECUTION_TIME' } }),
  quota: (): RunEvent => ({ type: 'flowrun.quota-exceeded.v1', data: { quota: 100 } }),
  internalError: (): RunEvent => ({ type: 'flowrun.internal-error.v1', data: { reason: 'engine crashed' } }),
  archived: (): RunEvent => ({ type: 'flowrun.archived.v1', data: {} }),
  purged: (): RunEvent => ({ type: 'flowrun.execution-data-purged.v1', data: { reason: 'RETENTION' } }),
};

export const cmd = {
  trigger: (): RunCommand => ({ type: 'TriggerRun', ...(ev.triggered().data as Extract<RunEvent, { type: 'flowrun.triggered.v1' }>['data']) }),
  start: (stepName: string): RunCommand => ({ type: 'StartStep', stepName, stepType: 'http' }),
  complete: (stepName: string, outcome: 'SUCCEEDED' | 'FAILED' = 'SUCCEEDED'): RunCommand => ({
    type: 'CompleteStep',
    stepName,
    outcome,
    durationMs: 5,
    dataRef: `exd_${stepName}`,
  }),
  pause: (stepName = 'approve', requestId = 'req_1'): RunCommand => ({ type: 'PauseRun', stepName, requestId, resumeDeadline: null }),
  resume: (requestId = 'req_1'): RunCommand => ({ type: 'ResumeRun', requestId, dataRef: 'exd_resume' }),
  succeed: (): RunCommand => ({ type: 'SucceedRun' }),
  fail: (failedStepName: string | null = 'b'): RunCommand => ({ type: 'FailRun', failedStepName }),
  stop: (): RunCommand => ({ type: 'StopRun', reason: 'by user' }),
  timeOut: (): RunCommand => ({ type: 'TimeOutRun', reason: 'EXECUTION_TIME' }),
  exceedQuota: (): RunCommand => ({ type: 'ExceedQuota', quota: 100 }),
  failInternally: (): RunCommand => ({ type: 'FailInternally', reason: 'engine crashed' }),
  retry: (strategy: 'FROM_FAILED_STEP' | 'ON_LATEST_VERSION' = 'FROM_FAILED_STEP', maxAttempts = 5): RunCommand => ({
    type: 'RetryRun',
    strategy,
    maxAttempts,
    newRunId: strategy === 'ON_LATEST_VERSION' ? 'run_2' : null,
  }),
  archive: (): RunCommand => ({ type: 'ArchiveRun' }),
  purge: (): RunCommand => ({ type: 'PurgeExecutionData', reason: 'RETENTION' }),
};

export const stateOf = (events: readonly RunEvent[]): RunState =>
  events.reduce((s, e) => evolve(s, e, NOW.toISOString()), initialState());

/** given(...).when(command) → { events } or { error, params } */
export const given = (...history: RunEvent[]) => ({
  when(command: RunCommand) {
    const state = stateOf(history);
    const decision = decide(command, state, { runId: RUN_ID, now: NOW });
    return {
      state,
      decision,
      thenEvents(expected: readonly RunEvent[]) {
        if (isDomainError(decision)) throw new Error(`expected events, got ${decision.code} ${JSON.stringify(decision.params)}`);
        expect(decision).toEqual(expected);
        return stateOf([...history, ...decision]);
      },
      thenError(code: ErrorCode, params: Record<string, unknown> = {}) {
        if (!isDomainError(decision)) throw new Error(`expected ${code}, got events ${JSON.stringify(decision)}`);
        expect(decision.code).toBe(code);
        expect(decision.params).toMatchObject(params);
      },
    };
  },
});
