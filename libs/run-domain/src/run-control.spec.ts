import { decide, evolve } from './decider';
import { cmd, ev, given, NOW, RUN_ID } from './decider.spec-helpers';
import type { RunState } from './state';

/**
 * Rules of run control that the command service's supervisor, fencing and parent rule lean on,
 * beyond the decider's main specification (decider.spec.ts) and the table (transitions.spec.ts).
 */
describe('run control rules in the decider', () => {
  const LATER = new Date(NOW.getTime() + 60_000);

  describe('runningSince: when the run last entered RUNNING (the supervisor measures the flow timeout from it)', () => {
    it('is the trigger time for a new run', () => {
      expect(given().when(cmd.trigger()).then([ev.triggered()]).runningSince).toBe(NOW.toISOString());
    });

    it('moves to the resume, so a long approval does not count as execution time', () => {
      const paused = [ev.triggered(), ev.stepStarted('approve'), ev.paused('approve', 'req_1')];
      const s = given(...paused).when(cmd.resume('req_1'), LATER).then([ev.resumed('approve', 'req_1')]);
      expect(s.runningSince).toBe(LATER.toISOString());
    });

    it('moves to a retry from the failed step (a new attempt)', () => {
      const failed = [ev.triggered(), ev.stepStarted('b'), ev.stepFailed('b'), ev.failed('b')];
      const s = given(...failed).when(cmd.retry('FROM_FAILED_STEP'), LATER).then([ev.retriedFromFailedStep(2, 'b')]);
      expect(s).toMatchObject({ status: 'RUNNING', runningSince: LATER.toISOString() });
    });

    it('stays put through a retry on the latest version (the original does not run again)', () => {
      const failed = [ev.triggered(), ev.failed(null)];
      const s = given(...failed).when(cmd.retry('ON_LATEST_VERSION'), LATER).then([ev.retriedOnLatestVersion(1, 'run_2')]);
      expect(s.runningSince).toBe(NOW.toISOString());
    });
  });

  it('fails a paused run (a child failing its parent that waits on a pause), and the request dies with it', () => {
    const paused = [ev.triggered(), ev.stepStarted('approve'), ev.paused('approve', 'req_1')];
    const s = given(...paused).when(cmd.fail('approve')).then([ev.failed('approve')]);
    expect(s).toMatchObject({ status: 'FAILED', pause: null, failedStepName: 'approve' });
    given(...paused, ev.failed('approve')).when(cmd.resume('req_1')).then('INVALID_TRANSITION', { status: 'FAILED' });
  });

  it('checks the request id before the deadline: only the holder of the id learns that it expired', () => {
    const expired = [ev.triggered(), ev.stepStarted('approve'), ev.paused('approve', 'req_1', NOW.toISOString())];
    given(...expired).when(cmd.resume('req_other'), LATER).then('PAUSE_REQUEST_MISMATCH', { entityId: 'req_other' });
    given(...expired).when(cmd.resume('req_1'), LATER).then('PAUSE_EXPIRED', { entityId: 'req_1' });
  });

  it('records closed requests: resumed ones as RESUMED, the one a run timed out on as EXPIRED, one it ended otherwise on as ABANDONED', () => {
    const paused = [ev.triggered(), ev.stepStarted('approve'), ev.paused('approve', 'req_1')];
    expect(given(...paused).when(cmd.resume('req_1')).then([ev.resumed('approve', 'req_1')]).requests).toEqual({ req_1: 'RESUMED' });
    expect(given(...paused).when(cmd.timeOut('PAUSE_TIME')).then([ev.timedOut('PAUSE_TIME')]).requests).toEqual({ req_1: 'EXPIRED' });
    expect(given(...paused).when(cmd.stop()).then([ev.stopped()])).toMatchObject({ pause: null, requests: { req_1: 'ABANDONED' } });
    expect(given(...paused).when(cmd.fail('approve')).then([ev.failed('approve')]).requests).toEqual({ req_1: 'ABANDONED' });
    expect(given(...paused).when(cmd.failInternally()).then([ev.internalError()]).requests).toEqual({ req_1: 'ABANDONED' });
    // A run that ends while it is not waiting closes nothing.
    const running = [ev.triggered(), ev.stepStarted('a')];
    expect(given(...running).when(cmd.stop()).then([ev.stopped()]).requests).toEqual({});
  });

  it('decides on snapshots stored before runningSince, requests, deadlines and step references existed', () => {
    const stored: RunState = {
      exists: true,
      status: 'PAUSED',
      attempt: 1,
      retryCount: 0,
      archived: false,
      purged: false,
      startTime: NOW.toISOString(),
      failedStepName: null,
      pause: { requestId: 'req_1', stepName: 'approve' },
      steps: { approve: { type: 'approval', status: 'PAUSED', attempt: 1 } },
    };
    expect(decide(cmd.resume('req_2'), stored, { runId: RUN_ID, now: NOW })).toMatchObject({ code: 'PAUSE_REQUEST_MISMATCH' });
    const events = decide(cmd.resume('req_1'), stored, { runId: RUN_ID, now: LATER });
    expect(events).toEqual([ev.resumed('approve', 'req_1')]);
    const after = evolve(stored, ev.resumed('approve', 'req_1'), LATER.toISOString());
    expect(after).toMatchObject({ status: 'RUNNING', runningSince: LATER.toISOString(), requests: { req_1: 'RESUMED' } });
    expect(after.steps.approve).toMatchObject({ status: 'SUCCEEDED', dataRef: 'exd_resume' });
  });

  it('answers the id of a pause abandoned before ABANDONED was recorded as one the run did not issue (404, never more)', () => {
    // Stopped while it waited on req_1, stored by a build that dropped the id with the pause.
    const stored: RunState = {
      ...given().when(cmd.trigger()).then([ev.triggered()]),
      status: 'STOPPED',
      pause: null,
      requests: {},
    };
    expect(decide(cmd.resume('req_1'), stored, { runId: RUN_ID, now: NOW })).toEqual({
      code: 'PAUSE_REQUEST_MISMATCH',
      params: { entityType: 'flow_run_request', entityId: 'req_1' },
    });
  });
});
