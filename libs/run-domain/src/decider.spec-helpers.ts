import { isDomainError, RunEventDataSchemas, type ErrorCode, type RunEvent, type RunEventData } from '@flowruns/contracts';
import type { PurgeRange, RunCommand, RunCommandType } from './commands';
import { decide, evolve } from './decider';
import { initialState, type RunState } from './state';

/**
 * Test vocabulary for the run decider, for specs only (the build leaves `*.spec-helpers.ts` out):
 *
 *   given(ev.triggered(), ev.stepStarted('a')).when(cmd.complete('a')).then([ev.stepSucceeded('a')]);
 *   given().when(cmd.start('a')).then('ENTITY_NOT_FOUND', { entityType: 'flow_run' });
 *
 * `then` returns the state after the emitted events (or the unchanged state after an error), for
 * assertions on what the decision leaves behind. Every event a decision emits must also pass its
 * contract schema: the decider must never produce an event that consumers would call invalid.
 */
export const RUN_ID = 'run_1';
/** When the history happened (every given event carries this time). */
export const T0 = new Date('2026-01-15T10:30:00.000Z');
/** When the command is decided, unless a spec says otherwise. */
export const NOW = T0;

type Data<T extends RunEvent['type']> = RunEventData<T>;

export const ev = {
  triggered: (over: Partial<Data<'flowrun.triggered.v1'>> = {}): RunEvent => ({
    type: 'flowrun.triggered.v1',
    data: {
      flowVersionId: 'flowver_1',
      flowDisplayName: 'Customer Onboarding',
      environment: 'PRODUCTION',
      triggeredBy: 'key_1',
      tags: ['onboarding'],
      stepsCount: 3,
      parentRunId: null,
      failParentOnFailure: false,
      retryOf: null,
      triggerDataRef: 'exd_trigger',
      logsFileId: null,
      ...over,
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
  paused: (stepName = 'approve', requestId = 'req_1', resumeDeadline: string | null = null): RunEvent => ({
    type: 'flowrun.paused.v1',
    data: { stepName, requestId, resumeDeadline },
  }),
  resumed: (stepName = 'approve', requestId = 'req_1'): RunEvent => ({
    type: 'flowrun.resumed.v1',
    data: { stepName, requestId, dataRef: 'exd_resume' },
  }),
  succeeded: (durationMs = 0): RunEvent => ({ type: 'flowrun.succeeded.v1', data: { durationMs } }),
  failed: (failedStepName: string | null = 'b', durationMs = 0): RunEvent => ({
    type: 'flowrun.failed.v1',
    data: { failedStepName, durationMs },
  }),
  stopped: (): RunEvent => ({ type: 'flowrun.stopped.v1', data: { reason: 'cancelled by key_1' } }),
  timedOut: (reason: Data<'flowrun.timed-out.v1'>['reason'] = 'EXECUTION_TIME'): RunEvent => ({
    type: 'flowrun.timed-out.v1',
    data: { reason },
  }),
  quotaExceeded: (): RunEvent => ({ type: 'flowrun.quota-exceeded.v1', data: { quota: 100 } }),
  internalError: (): RunEvent => ({ type: 'flowrun.internal-error.v1', data: { reason: 'engine crashed' } }),
  retriedFromFailedStep: (attempt = 2, fromStepName: string | null = 'b'): RunEvent => ({
    type: 'flowrun.retried.v1',
    data: { strategy: 'FROM_FAILED_STEP', attempt, fromStepName, newRunId: null },
  }),
  retriedOnLatestVersion: (attempt = 1, newRunId = 'run_2'): RunEvent => ({
    type: 'flowrun.retried.v1',
    data: { strategy: 'ON_LATEST_VERSION', attempt, fromStepName: null, newRunId },
  }),
  archived: (): RunEvent => ({ type: 'flowrun.archived.v1', data: {} }),
  purged: (reason: Data<'flowrun.execution-data-purged.v1'>['reason'] = 'RETENTION'): RunEvent => ({
    type: 'flowrun.execution-data-purged.v1',
    data: { reason },
  }),
  purgedThrough: (range: PurgeRange = RANGE): RunEvent => ({
    type: 'flowrun.execution-data-purged-through.v1',
    data: {
      reason: 'RETENTION',
      fromFinishedAt: range.from?.finishedAt ?? null,
      fromRunId: range.from?.runId ?? null,
      throughFinishedAt: range.through.finishedAt,
      runs: range.runs,
    },
  }),
};

/** A retention range that ends at the run under test. */
export const RANGE: PurgeRange = {
  from: { finishedAt: '2026-08-01T09:00:00.000000Z', runId: 'run_0' },
  through: { finishedAt: '2026-08-01T10:00:00.000000Z', runId: 'run_1' },
  runs: 12,
};

export const cmd = {
  trigger: (over: Partial<Extract<RunCommand, { type: 'TriggerRun' }>> = {}): RunCommand => {
    const { data } = ev.triggered() as Extract<RunEvent, { type: 'flowrun.triggered.v1' }>;
    return { type: 'TriggerRun', ...data, ...over };
  },
  start: (stepName: string): RunCommand => ({ type: 'StartStep', stepName, stepType: 'http' }),
  complete: (stepName: string, outcome: 'SUCCEEDED' | 'FAILED' = 'SUCCEEDED'): RunCommand => ({
    type: 'CompleteStep',
    stepName,
    outcome,
    durationMs: 5,
    dataRef: `exd_${stepName}`,
  }),
  pause: (stepName = 'approve', requestId = 'req_1'): RunCommand => ({
    type: 'PauseRun',
    stepName,
    requestId,
    resumeDeadline: null,
  }),
  resume: (requestId = 'req_1'): RunCommand => ({ type: 'ResumeRun', requestId, dataRef: 'exd_resume' }),
  succeed: (): RunCommand => ({ type: 'SucceedRun' }),
  fail: (failedStepName: string | null = 'b'): RunCommand => ({ type: 'FailRun', failedStepName }),
  stop: (): RunCommand => ({ type: 'StopRun', reason: 'cancelled by key_1' }),
  timeOut: (reason: 'EXECUTION_TIME' | 'PAUSE_TIME' | 'WORKER_LOST' = 'EXECUTION_TIME'): RunCommand => ({
    type: 'TimeOutRun',
    reason,
  }),
  exceedQuota: (): RunCommand => ({ type: 'ExceedQuota', quota: 100 }),
  failInternally: (): RunCommand => ({ type: 'FailInternally', reason: 'engine crashed' }),
  retry: (
    strategy: 'FROM_FAILED_STEP' | 'ON_LATEST_VERSION' = 'FROM_FAILED_STEP',
    maxAttempts = 5,
  ): RunCommand => ({
    type: 'RetryRun',
    strategy,
    maxAttempts,
    newRunId: strategy === 'ON_LATEST_VERSION' ? 'run_2' : null,
  }),
  archive: (): RunCommand => ({ type: 'ArchiveRun' }),
  purge: (reason: 'RETENTION' | 'ERASE' = 'RETENTION'): RunCommand => ({ type: 'PurgeExecutionData', reason }),
  purgeRange: (range: PurgeRange = RANGE): RunCommand => ({ type: 'PurgeExecutionData', reason: 'RETENTION', range }),
};

/**
 * One well-formed command of each type (a `Record`, so a new command type fails to compile until
 * it has one). Step names fit the histories in transitions.spec.ts: step `a` is running in RUNNING.
 */
export const SAMPLE_COMMAND: Readonly<Record<RunCommandType, RunCommand>> = {
  TriggerRun: cmd.trigger(),
  StartStep: cmd.start('next'),
  CompleteStep: cmd.complete('a'),
  PauseRun: cmd.pause('a', 'req_2'),
  ResumeRun: cmd.resume('req_1'),
  SucceedRun: cmd.succeed(),
  FailRun: cmd.fail('a'),
  StopRun: cmd.stop(),
  TimeOutRun: cmd.timeOut(),
  ExceedQuota: cmd.exceedQuota(),
  FailInternally: cmd.failInternally(),
  // ON_LATEST_VERSION: accepted in every terminal status. FROM_FAILED_STEP narrows that (it needs
  // a failure to resume from); both specs pin it separately.
  RetryRun: cmd.retry('ON_LATEST_VERSION'),
  ArchiveRun: cmd.archive(),
  PurgeExecutionData: cmd.purge(),
};

export const apply = (state: RunState, events: readonly RunEvent[], time = T0): RunState =>
  events.reduce((s, e) => evolve(s, e, time.toISOString()), state);

export const stateOf = (history: readonly RunEvent[]): RunState => apply(initialState(), history);

/** Fails with a readable message when the decider emits an event its contract schema refuses. */
export function expectValidEvents(events: readonly RunEvent[]): void {
  for (const e of events) {
    const parsed = RunEventDataSchemas[e.type].safeParse(e.data);
    if (!parsed.success) throw new Error(`decider emitted an invalid ${e.type}: ${parsed.error.message}`);
  }
}

export interface Then {
  /** The events the command must emit (`[]`: already done, nothing to record). */
  then(events: readonly RunEvent[]): RunState;
  /** The error the command must be refused with; `params` are matched as a subset. */
  then(code: ErrorCode, params?: Record<string, unknown>): RunState;
}

export const given = (...history: RunEvent[]) => ({
  when(command: RunCommand, now: Date = NOW): Then {
    const state = stateOf(history);
    const decision = decide(command, state, { runId: RUN_ID, now });
    const describeDecision = () =>
      isDomainError(decision) ? `error ${decision.code} ${JSON.stringify(decision.params)}` : `events ${JSON.stringify(decision)}`;
    return {
      then(expected: readonly RunEvent[] | ErrorCode, params: Record<string, unknown> = {}): RunState {
        if (typeof expected === 'string') {
          if (!isDomainError(decision)) throw new Error(`expected error ${expected}, got ${describeDecision()}`);
          expect(decision).toEqual({ code: expected, params: expect.objectContaining(params) });
          return state;
        }
        if (isDomainError(decision)) throw new Error(`expected ${JSON.stringify(expected)}, got ${describeDecision()}`);
        expect(decision).toEqual(expected);
        expectValidEvents(decision);
        return apply(state, decision, now);
      },
    } as Then;
  },
});
