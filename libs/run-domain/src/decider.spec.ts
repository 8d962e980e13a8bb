import type { RunCommand } from './commands';
import { cmd, ev, given, RUN_ID } from './decider.spec-helpers';

describe('run decider', () => {
  describe('trigger', () => {
    it('starts a run in RUNNING, attempt 1', () => {
      const s = given().when(cmd.trigger()).thenEvents([ev.triggered()]);
      expect(s).toMatchObject({ exists: true, status: 'RUNNING', attempt: 1, startTime: '2026-01-15T10:30:00.000Z' });
    });

    it('refuses a second trigger of the same run', () => {
      given(ev.triggered()).when(cmd.trigger()).thenError('RUN_ALREADY_EXISTS', { entityId: RUN_ID });
    });

    it.each(Object.entries(cmd).filter(([name]) => name !== 'trigger'))(
      'answers %s on a run that does not exist with ENTITY_NOT_FOUND',
      (_name, make) => {
        given()
          .when((make as () => RunCommand)()).thenError('ENTITY_NOT_FOUND', { entityType: 'flow_run', entityId: RUN_ID });
      },
    );
  });

  describe('steps', () => {
    it('records a step started then succeeded', () => {
      const s1 = given(ev.triggered()).when(cmd.start('a')).thenEvents([ev.stepStarted('a')]);
      expect(s1.steps.a).toEqual({ type: 'http', status: 'RUNNING', attempt: 1 });
      const s2 = given(ev.triggered(), ev.stepStarted('a')).when(cmd.complete('a')).thenEvents([ev.stepSucceeded('a')]);
      expect(s2.steps.a.status).toBe('SUCCEEDED');
    });

    it('records a failed step', () => {
      given(ev.triggered(), ev.stepStarted('a')).when(cmd.complete('a', 'FAILED')).thenEvents([ev.stepFailed('a')]);
    });

    it('takes a repeated report as already done (no events), so an engine may retry its call', () => {
      given(ev.triggered(), ev.stepStarted('a')).when(cmd.start('a')).thenEvents([]);
      given(ev.triggered(), ev.stepStarted('a'), ev.stepSucceeded('a')).when(cmd.complete('a')).thenEvents([]);
    });

    it('refuses to start a step that already succeeded', () => {
      given(ev.triggered(), ev.stepStarted('a'), ev.stepSucceeded('a'))
        .when(cmd.start('a'))
        .thenError('STEP_ALREADY_FINISHED', { stepName: 'a', status: 'SUCCEEDED' });
    });

    it('refuses to finish a step that is not running', () => {
      given(ev.triggered()).when(cmd.complete('a')).thenError('STEP_NOT_RUNNING', { stepName: 'a', status: null });
      given(ev.triggered(), ev.stepStarted('a'), ev.stepFailed('a'))
        .when(cmd.complete('a', 'SUCCEEDED'))
        .thenError('STEP_NOT_RUNNING', { stepName: 'a', status: 'FAILED' });
    });

    it('refuses step reports once the run has ended', () => {
      given(ev.triggered(), ev.succeeded()).when(cmd.start('a')).thenError('INVALID_TRANSITION', { status: 'SUCCEEDED', command: 'StartStep' });
    });
  });

  describe('pause and resume', () => {
    const paused = [ev.triggered(), ev.stepStarted('approve'), ev.paused('approve', 'req_1')];

    it('pauses with the request id it waits on', () => {
      const s = given(ev.triggered(), ev.stepStarted('approve')).when(cmd.pause('approve', 'req_1')).thenEvents([ev.paused('approve', 'req_1')]);
      expect(s).toMatchObject({ status: 'PAUSED', pause: { requestId: 'req_1', stepName: 'approve' } });
      expect(s.steps.approve.status).toBe('PAUSED');
    });

    it('resumes with the awaited request id: RUNNING, and the step succeeded with the input', () => {
      const s = given(...paused)
        .when(cmd.resume('req_1'))
        .thenEvents([{ type: 'flowrun.resumed.v1', data: { stepName: 'approve', requestId: 'req_1', dataRef: 'exd_resume' } }]);
      expect(s).toMatchObject({ status: 'RUNNING', pause: null });
      expect(s.steps.approve.status).toBe('SUCCEEDED');
    });

    it('refuses another request id', () => {
      given(...paused).when(cmd.resume('req_other')).thenError('PAUSE_REQUEST_MISMATCH', { entityId: 'req_other' });
    });

    it('refuses a request id used once already (the run is no longer paused)', () => {
      const resumed = { type: 'flowrun.resumed.v1', data: { stepName: 'approve', requestId: 'req_1', dataRef: 'x' } } as const;
      given(...paused, resumed).when(cmd.resume('req_1')).thenError('INVALID_TRANSITION', { status: 'RUNNING', command: 'ResumeRun' });
    });

    it('refuses to resume a run that is not paused', () => {
      given(ev.triggered()).when(cmd.resume()).thenError('INVALID_TRANSITION', { status: 'RUNNING' });
      given(ev.triggered(), ev.stopped()).when(cmd.resume()).thenError('INVALID_TRANSITION', { status: 'STOPPED' });
    });

    it('cancels a paused run, and forgets the request it waited on', () => {
      const s = given(...paused).when(cmd.stop()).thenEvents([ev.stopped()]);
      expect(s).toMatchObject({ status: 'STOPPED', pause: null });
    });
  });

  describe('endings', () => {
    it.each([
      ['succeed', cmd.succeed(), { type: 'flowrun.succeeded.v1', data: { durationMs: 0 } }, 'SUCCEEDED'],
      ['fail', cmd.fail('b'), { type: 'flowrun.failed.v1', data: { failedStepName: 'b', durationMs: 0 } }, 'FAILED'],
      ['stop', cmd.stop(), ev.stopped(), 'STOPPED'],
      ['time out', cmd.timeOut(), ev.timedOut(), 'TIMEOUT'],
      ['exceed the quota', cmd.exceedQuota(), ev.quota(), 'QUOTA_EXCEEDED'],
      ['fail internally', cmd.failInternally(), ev.internalError(), 'INTERNAL_ERROR'],
    ] as const)('%s ends a RUNNING run', (_n, command, event, status) => {
      const s = given(ev.triggered()).when(command).thenEvents([event]);
      expect(s.status).toBe(status);
    });

    it('records the failed step', () => {
      const s = given(ev.triggered()).when(cmd.fail('b')).thenEvents([
        { type: 'flowrun.failed.v1', data: { failedStepName: 'b', durationMs: 0 } },
      ]);
      expect(s.failedStepName).toBe('b');
    });
  });

  describe('retry FROM_FAILED_STEP', () => {
    const failedAtB = [ev.triggered(), ev.stepStarted('a'), ev.stepSucceeded('a'), ev.stepStarted('b'), ev.stepFailed('b'), ev.failed('b')];

    it('starts a new attempt of the same run from the failed step', () => {
      const s = given(...failedAtB)
        .when(cmd.retry('FROM_FAILED_STEP'))
        .thenEvents([{ type: 'flowrun.retried.v1', data: { strategy: 'FROM_FAILED_STEP', attempt: 2, fromStepName: 'b', newRunId: null } }]);
      expect(s).toMatchObject({ status: 'RUNNING', attempt: 2, retryCount: 1, failedStepName: null });
    });

    it('lets the failed step run again, and never the steps that succeeded before', () => {
      const retried = { type: 'flowrun.retried.v1', data: { strategy: 'FROM_FAILED_STEP', attempt: 2, fromStepName: 'b', newRunId: null } } as const;
      given(...failedAtB, retried).when(cmd.start('b')).thenEvents([ev.stepStarted('b', 2)]);
      given(...failedAtB, retried).when(cmd.start('a')).thenError('STEP_ALREADY_FINISHED', { stepName: 'a' });
    });

    it.each([
      ['STOPPED', ev.stopped()],
      ['TIMEOUT', ev.timedOut()],
      ['INTERNAL_ERROR', ev.internalError()],
      ['QUOTA_EXCEEDED', ev.quota()],
    ])('retries a run that ended %s', (_s, ending) => {
      given(ev.triggered(), ending).when(cmd.retry('FROM_FAILED_STEP')).thenEvents([
        { type: 'flowrun.retried.v1', data: { strategy: 'FROM_FAILED_STEP', attempt: 2, fromStepName: null, newRunId: null } },
      ]);
    });

    it('refuses a run that succeeded (nothing failed to resume from)', () => {
      given(ev.triggered(), ev.succeeded()).when(cmd.retry('FROM_FAILED_STEP')).thenError('INVALID_TRANSITION', { status: 'SUCCEEDED' });
    });

    it('refuses a run still running or paused', () => {
      given(ev.triggered()).when(cmd.retry()).thenError('INVALID_TRANSITION', { status: 'RUNNING' });
      given(ev.triggered(), ev.stepStarted('approve'), ev.paused()).when(cmd.retry()).thenError('INVALID_TRANSITION', { status: 'PAUSED' });
    });

    it('refuses an archived run', () => {
      given(...failedAtB, ev.archived()).when(cmd.retry()).thenError('RUN_ARCHIVED', { entityId: RUN_ID });
    });

    it('refuses a run whose execution data was purged', () => {
      given(...failedAtB, ev.purged()).when(cmd.retry()).thenError('EXECUTION_DATA_PURGED', { entityId: RUN_ID });
    });

    it('refuses past the maximum number of attempts', () => {
      given(...failedAtB).when(cmd.retry('FROM_FAILED_STEP', 1)).thenError('MAX_ATTEMPTS_REACHED', { attempts: 1, maxAttempts: 1 });
      const retried = { type: 'flowrun.retried.v1', data: { strategy: 'FROM_FAILED_STEP', attempt: 2, fromStepName: 'b', newRunId: null } } as const;
      given(...failedAtB, retried, ev.failed('b'))
        .when(cmd.retry('FROM_FAILED_STEP', 2))
        .thenError('MAX_ATTEMPTS_REACHED', { attempts: 2, maxAttempts: 2 });
    });
  });

  describe('retry ON_LATEST_VERSION', () => {
    it('links the original to the new run and leaves its status alone', () => {
      const s = given(ev.triggered(), ev.succeeded())
        .when(cmd.retry('ON_LATEST_VERSION'))
        .thenEvents([{ type: 'flowrun.retried.v1', data: { strategy: 'ON_LATEST_VERSION', attempt: 1, fromStepName: null, newRunId: 'run_2' } }]);
      expect(s).toMatchObject({ status: 'SUCCEEDED', attempt: 1, retryCount: 1 });
    });

    it('needs the id of the new run', () => {
      given(ev.triggered(), ev.failed())
        .when({ type: 'RetryRun', strategy: 'ON_LATEST_VERSION', maxAttempts: 5, newRunId: null })
        .thenError('VALIDATION', { field: 'newRunId' });
    });

    it('refuses a run whose trigger payload was purged', () => {
      given(ev.triggered(), ev.failed(), ev.purged()).when(cmd.retry('ON_LATEST_VERSION')).thenError('EXECUTION_DATA_PURGED');
    });
  });

  describe('archive and purge', () => {
    it('archives a run in any status, once', () => {
      expect(given(ev.triggered()).when(cmd.archive()).thenEvents([ev.archived()]).archived).toBe(true);
      given(ev.triggered(), ev.archived()).when(cmd.archive()).thenEvents([]);
    });

    it('purges a finished run, once', () => {
      expect(given(ev.triggered(), ev.succeeded()).when(cmd.purge()).thenEvents([ev.purged()]).purged).toBe(true);
      given(ev.triggered(), ev.succeeded(), ev.purged()).when(cmd.purge()).thenEvents([]);
    });

    it('never purges a run that is running or paused (a paused run needs its data to resume)', () => {
      given(ev.triggered()).when(cmd.purge()).thenError('INVALID_TRANSITION', { status: 'RUNNING' });
      given(ev.triggered(), ev.stepStarted('approve'), ev.paused()).when(cmd.purge()).thenError('INVALID_TRANSITION', { status: 'PAUSED' });
    });
  });
});
