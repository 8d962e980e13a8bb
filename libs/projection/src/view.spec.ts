import type { EventEnvelope, KnownEnvelope } from '@flowruns/contracts';
import { fullRunHistory, RunHistory, toProjectable } from './testing/run-events';
import { evolveRun, skipUnknown, type RunProjection } from './view';

/** Folds a history with evolveRun alone (no seq checks), failing on anything unprojectable. */
const project = (events: readonly EventEnvelope[]): RunProjection => {
  let p: RunProjection | null = null;
  for (const item of toProjectable(events)) {
    if (item.kind !== 'known') throw new Error('known events only');
    const r = evolveRun(p, item.envelope);
    if (!r.ok) throw new Error(`unprojectable ${item.envelope.type}: ${r.reason}`);
    p = r.projection;
  }
  if (!p) throw new Error('empty history');
  return p;
};

const known = (e: EventEnvelope): KnownEnvelope => {
  const [item] = toProjectable([e]);
  if (item.kind !== 'known') throw new Error('not known');
  return item.envelope;
};

describe('evolveRun', () => {
  it('creates the view from the trigger: times from the envelope, RUNNING, attempt 1, every data field', () => {
    const h = new RunHistory('run-1', { projectId: 'p-9', flowId: 'f-9' });
    const t = h.triggered({ parentRunId: 'run-0', failParentOnFailure: true, retryOf: 'run-x', environment: 'TESTING' });
    expect(project(h.events)).toEqual({
      view: {
        id: 'run-1',
        projectId: 'p-9',
        flowId: 'f-9',
        flowVersionId: 'fv-1',
        flowDisplayName: 'Sync leads',
        status: 'RUNNING',
        environment: 'TESTING',
        triggeredBy: 'user-1',
        tags: ['crm', 'nightly'],
        stepsCount: 3,
        parentRunId: 'run-0',
        failParentOnFailure: true,
        retryOf: 'run-x',
        failedStepName: null,
        attempt: 1,
        startTime: t.time,
        finishTime: null,
        archivedAt: null,
        purgedAt: null,
        logsFileId: 'run-1:logs',
        triggerDataRef: 'run-1:trigger',
        pauseRequestId: null,
        pauseStepName: null,
        created: t.time,
        version: 1,
      },
      steps: {},
    });
  });

  it('starts steps in order of first appearance and finishes them with duration, data ref and time', () => {
    const h = new RunHistory('run-1');
    h.triggered();
    const s1 = h.stepStarted('fetch');
    const f1 = h.stepSucceeded('fetch', 1, 120);
    const s2 = h.stepStarted('push', 1, 'CODE');
    const f2 = h.stepFailed('push', 1, 80, 'CODE');
    const p = project(h.events);
    expect(p.steps).toEqual({
      fetch: {
        runId: 'run-1',
        stepName: 'fetch',
        stepType: 'PIECE',
        status: 'SUCCEEDED',
        attempt: 1,
        position: 1,
        durationMs: 120,
        dataRef: 'run-1:fetch:1',
        startedAt: s1.time,
        finishedAt: f1.time,
      },
      push: {
        runId: 'run-1',
        stepName: 'push',
        stepType: 'CODE',
        status: 'FAILED',
        attempt: 1,
        position: 2,
        durationMs: 80,
        dataRef: 'run-1:push:1',
        startedAt: s2.time,
        finishedAt: f2.time,
      },
    });
    expect(p.view.version).toBe(5);
    expect(p.view.status).toBe('RUNNING');
  });

  it('projects a step finish without a start at the next position, with no start time', () => {
    const h = new RunHistory('run-1');
    h.triggered();
    h.stepSucceeded('fetch');
    expect(project(h.events).steps.fetch).toMatchObject({ status: 'SUCCEEDED', position: 1, startedAt: null });
  });

  it('pauses the run and its step, and resume clears the pause and succeeds the step with the resume data', () => {
    const h = new RunHistory('run-1');
    h.triggered();
    h.stepStarted('approve', 1, 'APPROVAL');
    h.add('flowrun.paused.v1', { stepName: 'approve', requestId: 'req-1', resumeDeadline: null });
    const paused = project(h.events);
    expect(paused.view).toMatchObject({ status: 'PAUSED', pauseRequestId: 'req-1', pauseStepName: 'approve' });
    expect(paused.steps.approve.status).toBe('PAUSED');

    const resumed = h.add('flowrun.resumed.v1', { stepName: 'approve', requestId: 'req-1', dataRef: 'resume-ref' });
    const p = project(h.events);
    expect(p.view).toMatchObject({ status: 'RUNNING', pauseRequestId: null, pauseStepName: null, version: 4 });
    expect(p.steps.approve).toMatchObject({ status: 'SUCCEEDED', dataRef: 'resume-ref', finishedAt: resumed.time });
  });

  it('pauses a run whose paused step never started without inventing a step row', () => {
    const h = new RunHistory('run-1');
    h.triggered();
    h.add('flowrun.paused.v1', { stepName: 'wait', requestId: 'req-1', resumeDeadline: null });
    h.add('flowrun.resumed.v1', { stepName: 'wait', requestId: 'req-1', dataRef: 'r' });
    const p = project(h.events);
    expect(p.steps).toEqual({});
    expect(p.view.status).toBe('RUNNING');
  });

  it.each([
    ['flowrun.succeeded.v1', { durationMs: 1 }, 'SUCCEEDED'],
    ['flowrun.failed.v1', { failedStepName: 'push', durationMs: 1 }, 'FAILED'],
    ['flowrun.stopped.v1', { reason: 'user' }, 'STOPPED'],
    ['flowrun.timed-out.v1', { reason: 'PAUSE_TIME' }, 'TIMEOUT'],
    ['flowrun.quota-exceeded.v1', { quota: 10 }, 'QUOTA_EXCEEDED'],
    ['flowrun.internal-error.v1', { reason: 'engine crashed' }, 'INTERNAL_ERROR'],
  ] as const)('%s ends a paused run as %s at the event time and clears the pause', (type, data, status) => {
    const h = new RunHistory('run-1');
    h.triggered();
    h.add('flowrun.paused.v1', { stepName: 'approve', requestId: 'req-1', resumeDeadline: null });
    const end = h.addRaw(type, data);
    expect(project(h.events).view).toMatchObject({
      status,
      finishTime: end.time,
      pauseRequestId: null,
      pauseStepName: null,
      failedStepName: type === 'flowrun.failed.v1' ? 'push' : null,
    });
  });

  it('retry FROM_FAILED_STEP reopens the run with the new attempt; the step restarts clean at its position', () => {
    const h = new RunHistory('run-1');
    h.triggered();
    h.stepStarted('fetch');
    h.stepSucceeded('fetch');
    h.stepStarted('push');
    h.stepFailed('push');
    h.add('flowrun.failed.v1', { failedStepName: 'push', durationMs: 5 });
    h.add('flowrun.retried.v1', { strategy: 'FROM_FAILED_STEP', attempt: 2, fromStepName: 'push', newRunId: null });
    const retried = project(h.events);
    expect(retried.view).toMatchObject({ status: 'RUNNING', attempt: 2, finishTime: null, failedStepName: null });
    const restarted = h.stepStarted('push', 2);
    expect(project(h.events).steps.push).toEqual({
      runId: 'run-1',
      stepName: 'push',
      stepType: 'PIECE',
      status: 'RUNNING',
      attempt: 2,
      position: 2,
      durationMs: null,
      dataRef: null,
      startedAt: restarted.time,
      finishedAt: null,
    });
  });

  it('retry ON_LATEST_VERSION changes nothing but the version', () => {
    const h = new RunHistory('run-1');
    h.triggered();
    h.add('flowrun.failed.v1', { failedStepName: null, durationMs: 5 });
    const before = project(h.events);
    h.add('flowrun.retried.v1', { strategy: 'ON_LATEST_VERSION', attempt: 1, fromStepName: null, newRunId: 'run-2' });
    const after = project(h.events);
    expect(after).toEqual({ ...before, view: { ...before.view, version: 3 } });
  });

  it('archive stamps the time; purge stamps it and drops the run\'s data references, the steps keep theirs', () => {
    const h = fullRunHistory('run-1');
    const p = project(h.events);
    const [archived, purged] = h.events.slice(-2);
    expect(p.view).toMatchObject({
      status: 'SUCCEEDED',
      archivedAt: archived.time,
      purgedAt: purged.time,
      logsFileId: null,
      triggerDataRef: null,
      attempt: 2,
      version: 16,
    });
    expect(Object.values(p.steps).map((s) => s.dataRef)).toEqual(['run-1:fetch:1', 'run-1:approve:resume', 'run-1:push:2']);
    expect(Object.values(p.steps).map((s) => [s.stepName, s.position, s.status, s.attempt])).toEqual([
      ['fetch', 1, 'SUCCEEDED', 1],
      ['approve', 2, 'SUCCEEDED', 1],
      ['push', 3, 'SUCCEEDED', 2],
    ]);
  });

  it('refuses events that need a view it does not have, and a second trigger', () => {
    const h = new RunHistory('run-1');
    const trig = known(h.triggered());
    const start = known(h.stepStarted('fetch'));
    expect(evolveRun(null, start)).toEqual({ ok: false, reason: 'not-created' });
    const r = evolveRun(null, trig);
    if (!r.ok) throw new Error('trigger must apply');
    expect(evolveRun(r.projection, trig)).toEqual({ ok: false, reason: 'already-created' });
  });
});

describe('skipUnknown', () => {
  it('moves the version and nothing else, and cannot apply to a run without a view', () => {
    const h = new RunHistory('run-1');
    h.triggered();
    const p = project(h.events);
    const e = h.addRaw('flowrun.brand-new.v1', {});
    expect(skipUnknown(p, e)).toEqual({ ok: true, projection: { view: { ...p.view, version: 2 }, steps: p.steps } });
    expect(skipUnknown(null, e)).toEqual({ ok: false, reason: 'not-created' });
  });
});
