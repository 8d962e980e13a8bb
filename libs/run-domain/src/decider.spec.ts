import { RUN_EVENT_TYPES, type RunEvent, type RunEventType } from '@flowruns/contracts';
import { RUN_COMMAND_TYPES } from './commands';
import { decide, requestNotIssued } from './decider';
import { cmd, ev, given, RANGE, RUN_ID, SAMPLE_COMMAND, stateOf, T0 } from './decider.spec-helpers';

const later = (ms: number) => new Date(T0.getTime() + ms);

describe('run decider', () => {
  describe('trigger', () => {
    it('creates the run: RUNNING, attempt 1, started at the time of the event', () => {
      const s = given().when(cmd.trigger()).then([ev.triggered()]);
      expect(s).toMatchObject({ exists: true, status: 'RUNNING', attempt: 1, retryCount: 0, startTime: T0.toISOString() });
    });

    it('carries the command into the event unchanged (nested run, tags, references)', () => {
      const nested = { parentRunId: 'run_parent', failParentOnFailure: true, tags: ['a', 'b'], retryOf: 'run_0', logsFileId: 'file_1' };
      given().when(cmd.trigger(nested)).then([ev.triggered(nested)]);
    });

    it('records a run triggered over its quota, and ends it at once as QUOTA_EXCEEDED', () => {
      const s = given().when(cmd.trigger({ exceededQuota: 1000 })).then([
        ev.triggered(),
        { type: 'flowrun.quota-exceeded.v1', data: { quota: 1000 } },
      ]);
      expect(s).toMatchObject({ exists: true, status: 'QUOTA_EXCEEDED', attempt: 1 });
    });

    it('refuses to trigger a run id that already exists', () => {
      given(ev.triggered()).when(cmd.trigger()).then('RUN_ALREADY_EXISTS', { entityType: 'flow_run', entityId: RUN_ID });
    });

    // ResumeRun is keyless: a run that does not exist answers it as any run answers an id it did
    // not issue (pinned under 'pause and resume').
    it.each(RUN_COMMAND_TYPES.filter((t) => t !== 'TriggerRun' && t !== 'ResumeRun'))(
      'answers %s on a run that does not exist with ENTITY_NOT_FOUND',
      (type) => {
        given().when(SAMPLE_COMMAND[type]).then('ENTITY_NOT_FOUND', { entityType: 'flow_run', entityId: RUN_ID });
      },
    );
  });

  describe('step lifecycle', () => {
    it('starts a step in the current attempt', () => {
      const s = given(ev.triggered()).when(cmd.start('a')).then([ev.stepStarted('a', 1)]);
      expect(s.steps.a).toMatchObject({ type: 'http', status: 'RUNNING', attempt: 1 });
      expect(s.status).toBe('RUNNING');
    });

    it('records a running step that succeeded, with its duration and data reference', () => {
      const s = given(ev.triggered(), ev.stepStarted('a')).when(cmd.complete('a', 'SUCCEEDED')).then([ev.stepSucceeded('a')]);
      expect(s.steps.a).toMatchObject({ type: 'http', status: 'SUCCEEDED', attempt: 1, dataRef: 'exd_a' });
    });

    it('records a running step that failed, and leaves the run RUNNING (the flow may handle it)', () => {
      const s = given(ev.triggered(), ev.stepStarted('a')).when(cmd.complete('a', 'FAILED')).then([ev.stepFailed('a')]);
      expect(s.steps.a.status).toBe('FAILED');
      expect(s.status).toBe('RUNNING');
    });

    it('takes the step type from the start, not from the completion', () => {
      given(ev.triggered(), { type: 'flowrun.step.started.v1', data: { stepName: 'a', stepType: 'code', attempt: 1 } })
        .when(cmd.complete('a'))
        .then([{ type: 'flowrun.step.succeeded.v1', data: { stepName: 'a', stepType: 'code', attempt: 1, durationMs: 5, dataRef: 'exd_a' } }]);
    });

    describe('repeated reports are already done: no events, so an engine may retry its calls', () => {
      it('start of a step already running', () => {
        given(ev.triggered(), ev.stepStarted('a')).when(cmd.start('a')).then([]);
      });
      it('success of a step already succeeded', () => {
        given(ev.triggered(), ev.stepStarted('a'), ev.stepSucceeded('a')).when(cmd.complete('a', 'SUCCEEDED')).then([]);
      });
      it('failure of a step already failed', () => {
        given(ev.triggered(), ev.stepStarted('a'), ev.stepFailed('a')).when(cmd.complete('a', 'FAILED')).then([]);
      });
    });

    it('refuses to start a step that already succeeded (STEP_ALREADY_FINISHED)', () => {
      given(ev.triggered(), ev.stepStarted('a'), ev.stepSucceeded('a'))
        .when(cmd.start('a'))
        .then('STEP_ALREADY_FINISHED', { stepName: 'a', status: 'SUCCEEDED' });
    });

    it('refuses to complete a step that never started (STEP_NOT_RUNNING)', () => {
      given(ev.triggered()).when(cmd.complete('a')).then('STEP_NOT_RUNNING', { stepName: 'a', status: null });
    });

    it('refuses to complete a step that already ended the other way (STEP_NOT_RUNNING)', () => {
      given(ev.triggered(), ev.stepStarted('a'), ev.stepFailed('a'))
        .when(cmd.complete('a', 'SUCCEEDED'))
        .then('STEP_NOT_RUNNING', { stepName: 'a', status: 'FAILED' });
      given(ev.triggered(), ev.stepStarted('a'), ev.stepSucceeded('a'))
        .when(cmd.complete('a', 'FAILED'))
        .then('STEP_NOT_RUNNING', { stepName: 'a', status: 'SUCCEEDED' });
    });

    it('refuses step reports once the run has ended (INVALID_TRANSITION)', () => {
      given(ev.triggered(), ev.stepStarted('a'), ev.succeeded())
        .when(cmd.start('b'))
        .then('INVALID_TRANSITION', { status: 'SUCCEEDED', command: 'StartStep' });
      given(ev.triggered(), ev.stepStarted('a'), ev.stopped())
        .when(cmd.complete('a'))
        .then('INVALID_TRANSITION', { status: 'STOPPED', command: 'CompleteStep' });
    });

    it('refuses step reports while the run is paused', () => {
      given(ev.triggered(), ev.stepStarted('approve'), ev.paused())
        .when(cmd.start('next'))
        .then('INVALID_TRANSITION', { status: 'PAUSED', command: 'StartStep' });
    });
  });

  describe('pause and resume', () => {
    const paused = [ev.triggered(), ev.stepStarted('approve'), ev.paused('approve', 'req_1')];

    it('pauses a running run on a step, waiting on a request id', () => {
      const s = given(ev.triggered(), ev.stepStarted('approve')).when(cmd.pause('approve', 'req_1')).then([ev.paused('approve', 'req_1')]);
      expect(s).toMatchObject({ status: 'PAUSED', pause: { requestId: 'req_1', stepName: 'approve' } });
      expect(s.steps.approve.status).toBe('PAUSED');
    });

    it('resumes with the awaited request id: RUNNING again, the step succeeded with the input as output', () => {
      const s = given(...paused).when(cmd.resume('req_1')).then([ev.resumed('approve', 'req_1')]);
      expect(s).toMatchObject({ status: 'RUNNING', pause: null });
      expect(s.steps.approve).toMatchObject({ type: 'http', status: 'SUCCEEDED', attempt: 1, dataRef: 'exd_resume' });
    });

    it('refuses another request id (PAUSE_REQUEST_MISMATCH), and stays paused', () => {
      const s = given(...paused).when(cmd.resume('req_other')).then('PAUSE_REQUEST_MISMATCH', { entityId: 'req_other' });
      expect(s).toMatchObject({ status: 'PAUSED', pause: { requestId: 'req_1' } });
    });

    it('refuses a stale request id once the run paused again on a new one', () => {
      given(...paused, ev.resumed('approve', 'req_1'), ev.stepStarted('approve2'), ev.paused('approve2', 'req_2'))
        .when(cmd.resume('req_1'))
        .then('PAUSE_REQUEST_MISMATCH', { entityId: 'req_1' });
    });

    it('refuses a request id used once already (single-use), even after the run has moved on', () => {
      const resumed = [...paused, ev.resumed('approve', 'req_1')];
      given(...resumed).when(cmd.resume('req_1')).then('PAUSE_REQUEST_MISMATCH', { entityId: 'req_1', reason: 'ALREADY_USED' });
      given(...resumed, ev.succeeded())
        .when(cmd.resume('req_1'))
        .then('PAUSE_REQUEST_MISMATCH', { entityId: 'req_1', reason: 'ALREADY_USED' });
    });

    it('accepts a resume before the deadline, and refuses one at or after it (PAUSE_EXPIRED) while the run still waits', () => {
      const deadline = later(60_000);
      const waiting = [ev.triggered(), ev.stepStarted('approve'), ev.paused('approve', 'req_1', deadline.toISOString())];
      given(...waiting).when(cmd.resume('req_1'), later(59_999)).then([ev.resumed('approve', 'req_1')]);
      const s = given(...waiting)
        .when(cmd.resume('req_1'), deadline)
        .then('PAUSE_EXPIRED', { entityType: 'flow_run_request', entityId: 'req_1', resumeDeadline: deadline.toISOString() });
      expect(s.status).toBe('PAUSED');
    });

    it('refuses the request id of a run that timed out waiting on it (PAUSE_EXPIRED)', () => {
      given(...paused, ev.timedOut('PAUSE_TIME')).when(cmd.resume('req_1')).then('PAUSE_EXPIRED', { entityId: 'req_1' });
    });

    it.each([
      ['STOPPED', [...paused, ev.stopped()]],
      ['FAILED', [...paused, ev.failed('approve')]],
      ['INTERNAL_ERROR', [...paused, ev.internalError()]],
    ] as const)('answers the id of a pause the run abandoned (now %s) INVALID_TRANSITION, naming its status', (status, history) => {
      given(...history).when(cmd.resume('req_1')).then('INVALID_TRANSITION', { entityId: RUN_ID, status, command: 'ResumeRun' });
    });

    it('answers the id of an abandoned pause INVALID_TRANSITION even once the run was retried and waits on a new id', () => {
      const again = [...paused, ev.stopped(), ev.retriedFromFailedStep(2, 'approve'), ev.stepStarted('approve', 2), ev.paused('approve', 'req_2')];
      given(...again).when(cmd.resume('req_1')).then('INVALID_TRANSITION', { entityId: RUN_ID, status: 'PAUSED', command: 'ResumeRun' });
      given(...again).when(cmd.resume('req_2')).then([ev.resumed('approve', 'req_2')]);
    });

    /**
     * The resume routes take no API key: the request id is the capability. Without an id the run
     * issued, the answer must not tell whether the run exists, what its status is, or that it
     * waits on another id — one and the same error for all of them.
     */
    describe('an id the run did not issue: one answer, whatever the run', () => {
      const NOT_ISSUED = { code: 'PAUSE_REQUEST_MISMATCH', params: { entityType: 'flow_run_request', entityId: 'req_guess' } };
      it.each([
        ['does not exist', []],
        ['is RUNNING', [ev.triggered(), ev.stepStarted('a')]],
        ['is PAUSED on another id', paused],
        ['SUCCEEDED', [ev.triggered(), ev.succeeded()]],
        ['SUCCEEDED after a resume', [...paused, ev.resumed('approve', 'req_1'), ev.succeeded()]],
        ['was STOPPED while it waited', [...paused, ev.stopped()]],
        ['FAILED', [ev.triggered(), ev.stepStarted('b'), ev.stepFailed('b'), ev.failed('b')]],
        ['timed out while it waited', [...paused, ev.timedOut('PAUSE_TIME')]],
        ['TIMEOUT while running', [ev.triggered(), ev.stepStarted('a'), ev.timedOut('EXECUTION_TIME')]],
        ['is archived and purged', [ev.triggered(), ev.succeeded(), ev.archived(), ev.purged()]],
      ] as const)('run %s: 404 PAUSE_REQUEST_MISMATCH naming only the id sent', (_, history) => {
        const state = stateOf(history);
        expect(decide(cmd.resume('req_guess'), state, { runId: RUN_ID, now: T0 })).toEqual(NOT_ISSUED);
        expect(requestNotIssued('req_guess')).toEqual(NOT_ISSUED);
      });

      it('is decided before the deadline: a wrong id on an expired pause is not told it expired', () => {
        const waiting = [ev.triggered(), ev.stepStarted('approve'), ev.paused('approve', 'req_1', T0.toISOString())];
        given(...waiting).when(cmd.resume('req_guess'), later(60_000)).then('PAUSE_REQUEST_MISMATCH', { entityId: 'req_guess' });
      });
    });

    it('refuses to pause a run that is already paused', () => {
      given(...paused).when(cmd.pause('approve', 'req_2')).then('INVALID_TRANSITION', { status: 'PAUSED', command: 'PauseRun' });
    });
  });

  describe('endings', () => {
    it('succeeds a running run, with the time since the trigger as its duration', () => {
      const s = given(ev.triggered(), ev.stepStarted('a'), ev.stepSucceeded('a'))
        .when(cmd.succeed(), later(1500))
        .then([ev.succeeded(1500)]);
      expect(s.status).toBe('SUCCEEDED');
    });

    it('fails a running run, recording the failed step and the duration', () => {
      const s = given(ev.triggered(), ev.stepStarted('b'), ev.stepFailed('b'))
        .when(cmd.fail('b'), later(2000))
        .then([ev.failed('b', 2000)]);
      expect(s).toMatchObject({ status: 'FAILED', failedStepName: 'b' });
    });

    it('fails a run outside any step', () => {
      expect(given(ev.triggered()).when(cmd.fail(null)).then([ev.failed(null)])).toMatchObject({ status: 'FAILED', failedStepName: null });
    });

    it.each([
      ['stop', cmd.stop(), ev.stopped(), 'STOPPED'],
      ['time out', cmd.timeOut(), ev.timedOut(), 'TIMEOUT'],
      ['exceed the quota', cmd.exceedQuota(), ev.quotaExceeded(), 'QUOTA_EXCEEDED'],
      ['fail internally', cmd.failInternally(), ev.internalError(), 'INTERNAL_ERROR'],
    ] as const)('can %s a RUNNING run', (_name, command, event, status) => {
      expect(given(ev.triggered(), ev.stepStarted('a')).when(command).then([event]).status).toBe(status);
    });

    it.each([
      ['stop', cmd.stop(), ev.stopped(), 'STOPPED'],
      ['fail (a failed child ends its waiting parent)', cmd.fail(null), ev.failed(null), 'FAILED'],
      ['time out', cmd.timeOut('PAUSE_TIME'), ev.timedOut('PAUSE_TIME'), 'TIMEOUT'],
      ['fail internally', cmd.failInternally(), ev.internalError(), 'INTERNAL_ERROR'],
    ] as const)('can %s a PAUSED run, which forgets the request it waited on', (_name, command, event, status) => {
      const s = given(ev.triggered(), ev.stepStarted('approve'), ev.paused()).when(command).then([event]);
      expect(s).toMatchObject({ status, pause: null });
    });

    it('does not end a paused run by quota (a waiting run uses no execution time)', () => {
      given(ev.triggered(), ev.stepStarted('approve'), ev.paused())
        .when(cmd.exceedQuota())
        .then('INVALID_TRANSITION', { status: 'PAUSED', command: 'ExceedQuota' });
    });

    it.each([
      ['succeed', cmd.succeed()],
      ['fail', cmd.fail()],
      ['stop', cmd.stop()],
      ['time out', cmd.timeOut()],
      ['fail internally', cmd.failInternally()],
    ] as const)('refuses to %s a run that has already ended', (_name, command) => {
      given(ev.triggered(), ev.failed()).when(command).then('INVALID_TRANSITION', { status: 'FAILED', command: command.type });
    });
  });

  describe('retry FROM_FAILED_STEP', () => {
    const failedAtB = [
      ev.triggered(),
      ev.stepStarted('a'),
      ev.stepSucceeded('a'),
      ev.stepStarted('b'),
      ev.stepFailed('b'),
      ev.failed('b'),
    ];

    it('starts a new attempt of the same run, from the failed step', () => {
      const s = given(...failedAtB).when(cmd.retry('FROM_FAILED_STEP')).then([ev.retriedFromFailedStep(2, 'b')]);
      expect(s).toMatchObject({ status: 'RUNNING', attempt: 2, retryCount: 1, failedStepName: null });
    });

    it('keeps the outputs of the steps that succeeded before', () => {
      const s = given(...failedAtB).when(cmd.retry('FROM_FAILED_STEP')).then([ev.retriedFromFailedStep(2, 'b')]);
      expect(s.steps.a).toMatchObject({ type: 'http', status: 'SUCCEEDED', attempt: 1, dataRef: 'exd_a' });
    });

    it('lets the failed step start again, in the new attempt', () => {
      given(...failedAtB, ev.retriedFromFailedStep(2, 'b')).when(cmd.start('b')).then([ev.stepStarted('b', 2)]);
    });

    it('never runs again a step that succeeded in an earlier attempt', () => {
      given(...failedAtB, ev.retriedFromFailedStep(2, 'b'))
        .when(cmd.start('a'))
        .then('STEP_ALREADY_FINISHED', { stepName: 'a', status: 'SUCCEEDED' });
    });

    it('takes no late report from the earlier attempt for the new one', () => {
      given(...failedAtB, ev.retriedFromFailedStep(2, 'b'))
        .when(cmd.complete('b', 'FAILED'))
        .then('STEP_NOT_RUNNING', { stepName: 'b' });
    });

    it('runs the retried attempt to success', () => {
      const s = given(...failedAtB, ev.retriedFromFailedStep(2, 'b'), ev.stepStarted('b', 2), ev.stepSucceeded('b', 2))
        .when(cmd.succeed())
        .then([ev.succeeded(0)]);
      expect(s).toMatchObject({ status: 'SUCCEEDED', attempt: 2 });
    });

    it.each([
      ['STOPPED', ev.stopped()],
      ['TIMEOUT', ev.timedOut()],
      ['INTERNAL_ERROR', ev.internalError()],
      ['QUOTA_EXCEEDED', ev.quotaExceeded()],
    ] as const)('retries a run that ended %s (no step failed: fromStepName is null)', (_status, ending) => {
      const s = given(ev.triggered(), ev.stepStarted('a'), ending).when(cmd.retry('FROM_FAILED_STEP')).then([ev.retriedFromFailedStep(2, null)]);
      expect(s).toMatchObject({ status: 'RUNNING', attempt: 2 });
    });

    it('lets a step that was running when the run ended start again in the new attempt', () => {
      given(ev.triggered(), ev.stepStarted('a'), ev.timedOut(), ev.retriedFromFailedStep(2, null))
        .when(cmd.start('a'))
        .then([ev.stepStarted('a', 2)]);
    });

    it('refuses a run that succeeded: there is no failed step to resume from', () => {
      given(ev.triggered(), ev.succeeded())
        .when(cmd.retry('FROM_FAILED_STEP'))
        .then('INVALID_TRANSITION', { status: 'SUCCEEDED', command: 'RetryRun', strategy: 'FROM_FAILED_STEP' });
    });

    it.each([
      ['RUNNING', [ev.triggered(), ev.stepStarted('a')]],
      ['PAUSED', [ev.triggered(), ev.stepStarted('approve'), ev.paused()]],
    ] as const)('refuses a run that is still %s', (status, history) => {
      given(...history).when(cmd.retry('FROM_FAILED_STEP')).then('INVALID_TRANSITION', { status, command: 'RetryRun' });
      given(...history).when(cmd.retry('ON_LATEST_VERSION')).then('INVALID_TRANSITION', { status, command: 'RetryRun' });
    });

    it('refuses an archived run (RUN_ARCHIVED)', () => {
      given(...failedAtB, ev.archived()).when(cmd.retry('FROM_FAILED_STEP')).then('RUN_ARCHIVED', { entityType: 'flow_run', entityId: RUN_ID });
    });

    it('refuses a run whose execution data was purged (EXECUTION_DATA_PURGED): the failed step needs its inputs', () => {
      given(...failedAtB, ev.purged())
        .when(cmd.retry('FROM_FAILED_STEP'))
        .then('EXECUTION_DATA_PURGED', { entityType: 'flow_run', entityId: RUN_ID });
    });

    it('allows retries up to the maximum number of attempts, then refuses (MAX_ATTEMPTS_REACHED)', () => {
      // maxAttempts 3: the original attempt and two retries.
      given(...failedAtB).when(cmd.retry('FROM_FAILED_STEP', 3)).then([ev.retriedFromFailedStep(2, 'b')]);
      const secondFailure = [...failedAtB, ev.retriedFromFailedStep(2, 'b'), ev.stepStarted('b', 2), ev.stepFailed('b', 2), ev.failed('b')];
      given(...secondFailure).when(cmd.retry('FROM_FAILED_STEP', 3)).then([ev.retriedFromFailedStep(3, 'b')]);
      const thirdFailure = [...secondFailure, ev.retriedFromFailedStep(3, 'b'), ev.stepStarted('b', 3), ev.stepFailed('b', 3), ev.failed('b')];
      given(...thirdFailure)
        .when(cmd.retry('FROM_FAILED_STEP', 3))
        .then('MAX_ATTEMPTS_REACHED', { entityId: RUN_ID, attempts: 3, maxAttempts: 3 });
    });

    it('refuses any retry when the maximum is one attempt', () => {
      given(...failedAtB).when(cmd.retry('FROM_FAILED_STEP', 1)).then('MAX_ATTEMPTS_REACHED', { attempts: 1, maxAttempts: 1 });
    });
  });

  describe('retry ON_LATEST_VERSION', () => {
    it('links the original run to the new one and leaves its status and attempt alone', () => {
      const s = given(ev.triggered(), ev.failed()).when(cmd.retry('ON_LATEST_VERSION')).then([ev.retriedOnLatestVersion(1, 'run_2')]);
      expect(s).toMatchObject({ status: 'FAILED', attempt: 1, retryCount: 1 });
    });

    it('retries a run that succeeded too (it replays the trigger on a fixed flow)', () => {
      const s = given(ev.triggered(), ev.succeeded()).when(cmd.retry('ON_LATEST_VERSION')).then([ev.retriedOnLatestVersion(1, 'run_2')]);
      expect(s.status).toBe('SUCCEEDED');
    });

    it('needs the id of the new run', () => {
      given(ev.triggered(), ev.failed())
        .when({ type: 'RetryRun', strategy: 'ON_LATEST_VERSION', maxAttempts: 5, newRunId: null })
        .then('VALIDATION', { field: 'newRunId' });
    });

    it('refuses an archived run (RUN_ARCHIVED)', () => {
      given(ev.triggered(), ev.failed(), ev.archived()).when(cmd.retry('ON_LATEST_VERSION')).then('RUN_ARCHIVED', { entityId: RUN_ID });
    });

    it('refuses a run whose trigger payload was purged (EXECUTION_DATA_PURGED)', () => {
      given(ev.triggered(), ev.failed(), ev.purged()).when(cmd.retry('ON_LATEST_VERSION')).then('EXECUTION_DATA_PURGED', { entityId: RUN_ID });
    });

    it('refuses past the maximum number of attempts (MAX_ATTEMPTS_REACHED)', () => {
      given(ev.triggered(), ev.failed()).when(cmd.retry('ON_LATEST_VERSION', 1)).then('MAX_ATTEMPTS_REACHED', { maxAttempts: 1 });
    });
  });

  describe('archive and purge', () => {
    it.each([
      ['RUNNING', [ev.triggered()]],
      ['PAUSED', [ev.triggered(), ev.stepStarted('approve'), ev.paused()]],
      ['SUCCEEDED', [ev.triggered(), ev.succeeded()]],
      ['FAILED', [ev.triggered(), ev.failed()]],
    ] as const)('archives a %s run, and leaves its status alone', (status, history) => {
      expect(given(...history).when(cmd.archive()).then([ev.archived()])).toMatchObject({ archived: true, status });
    });

    it('archiving twice records nothing the second time', () => {
      given(ev.triggered(), ev.succeeded(), ev.archived()).when(cmd.archive()).then([]);
    });

    it('purges the execution data of a finished run', () => {
      expect(given(ev.triggered(), ev.succeeded()).when(cmd.purge('ERASE')).then([ev.purged('ERASE')])).toMatchObject({
        purged: true,
        status: 'SUCCEEDED',
      });
    });

    it('purges an archived run too', () => {
      given(ev.triggered(), ev.succeeded(), ev.archived()).when(cmd.purge()).then([ev.purged()]);
    });

    it('purging twice records nothing the second time', () => {
      given(ev.triggered(), ev.succeeded(), ev.purged()).when(cmd.purge()).then([]);
      given(ev.triggered(), ev.succeeded(), ev.purged('RETENTION')).when(cmd.purge('ERASE')).then([]);
      given(ev.triggered(), ev.succeeded(), ev.purgedThrough()).when(cmd.purge('ERASE')).then([]);
    });

    it('records a retention range on the run that closes it, and the run reads purged', () => {
      expect(given(ev.triggered(), ev.failed('a')).when(cmd.purgeRange()).then([ev.purgedThrough()])).toMatchObject({
        purged: true,
        status: 'FAILED',
      });
      given(ev.triggered(), ev.failed('a'), ev.purgedThrough()).when(cmd.retry('FROM_FAILED_STEP')).then('EXECUTION_DATA_PURGED', { entityId: RUN_ID });
    });

    it('records a range even on a run erased before (the range speaks for the other runs too)', () => {
      given(ev.triggered(), ev.succeeded(), ev.purged('ERASE')).when(cmd.purgeRange()).then([ev.purgedThrough()]);
    });

    it('refuses a range that does not end at the run it is recorded on', () => {
      given(ev.triggered(), ev.succeeded())
        .when(cmd.purgeRange({ ...RANGE, through: { ...RANGE.through, runId: 'run_9' } }))
        .then('VALIDATION', { field: 'range.through' });
    });

    it('never closes a range on a run that has not finished', () => {
      given(ev.triggered(), ev.stepStarted('a')).when(cmd.purgeRange()).then('INVALID_TRANSITION', { status: 'RUNNING', command: 'PurgeExecutionData' });
    });

    it('never purges a running run (its engine still needs the data)', () => {
      given(ev.triggered(), ev.stepStarted('a')).when(cmd.purge()).then('INVALID_TRANSITION', { status: 'RUNNING', command: 'PurgeExecutionData' });
    });

    it('never purges a paused run (it needs its data to resume)', () => {
      given(ev.triggered(), ev.stepStarted('approve'), ev.paused())
        .when(cmd.purge())
        .then('INVALID_TRANSITION', { status: 'PAUSED', command: 'PurgeExecutionData' });
    });
  });

  describe('evolve: the status each event leads to (the event docs state the same)', () => {
    const running: RunEvent[] = [ev.triggered(), ev.stepStarted('a')];
    const cases: Record<RunEventType, [history: RunEvent[], event: RunEvent, status: string]> = {
      'flowrun.triggered.v1': [[], ev.triggered(), 'RUNNING'],
      'flowrun.step.started.v1': [[ev.triggered()], ev.stepStarted('a'), 'RUNNING'],
      'flowrun.step.succeeded.v1': [running, ev.stepSucceeded('a'), 'RUNNING'],
      'flowrun.step.failed.v1': [running, ev.stepFailed('a'), 'RUNNING'],
      'flowrun.paused.v1': [running, ev.paused('a'), 'PAUSED'],
      'flowrun.resumed.v1': [[...running, ev.paused('a')], ev.resumed('a'), 'RUNNING'],
      'flowrun.succeeded.v1': [running, ev.succeeded(), 'SUCCEEDED'],
      'flowrun.failed.v1': [running, ev.failed('a'), 'FAILED'],
      'flowrun.stopped.v1': [running, ev.stopped(), 'STOPPED'],
      'flowrun.timed-out.v1': [running, ev.timedOut(), 'TIMEOUT'],
      'flowrun.quota-exceeded.v1': [running, ev.quotaExceeded(), 'QUOTA_EXCEEDED'],
      'flowrun.internal-error.v1': [running, ev.internalError(), 'INTERNAL_ERROR'],
      'flowrun.retried.v1': [[...running, ev.failed('a')], ev.retriedFromFailedStep(2, 'a'), 'RUNNING'],
      'flowrun.archived.v1': [[...running, ev.succeeded()], ev.archived(), 'SUCCEEDED'],
      'flowrun.execution-data-purged.v1': [[...running, ev.failed('a')], ev.purged(), 'FAILED'],
      'flowrun.execution-data-purged-through.v1': [[...running, ev.succeeded()], ev.purgedThrough(), 'SUCCEEDED'],
    };

    it('has a case for every event type', () => {
      expect(Object.keys(cases).sort()).toEqual([...RUN_EVENT_TYPES].sort());
    });

    it.each(RUN_EVENT_TYPES)('%s', (type) => {
      const [history, event, status] = cases[type];
      expect(event.type).toBe(type);
      expect(stateOf([...history, event]).status).toBe(status);
    });

    it('flowrun.retried.v1 ON_LATEST_VERSION leaves the status alone', () => {
      expect(stateOf([...running, ev.failed('a'), ev.retriedOnLatestVersion()]).status).toBe('FAILED');
    });
  });
});
