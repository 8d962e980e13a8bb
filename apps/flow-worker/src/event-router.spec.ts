import { parseEnvelope, type RunEventType } from '@flowruns/contracts';
import { eventLogFields, routeEvent } from './event-router';

const envelope = (type: string, data: Record<string, unknown>, subject = 'run_1') =>
  Buffer.from(
    JSON.stringify({
      specversion: '1.0',
      id: 'evt_1',
      type,
      source: 'flow-runs/command-service',
      time: '2024-01-15T10:30:00.000Z',
      subject,
      projectId: 'proj_1',
      flowId: 'flow_1',
      seq: 1,
      datacontenttype: 'application/json',
      data,
    }),
  );
const route = (type: RunEventType | string, data: Record<string, unknown>) => routeEvent(parseEnvelope(envelope(type, data)));

const triggered = {
  flowVersionId: 'fv', flowDisplayName: 'f', environment: 'PRODUCTION', triggeredBy: null, tags: [], stepsCount: 2,
  parentRunId: 'parent_1', failParentOnFailure: true, retryOf: null, triggerDataRef: 'exd_1', logsFileId: null,
};
const step = (stepType: string) => ({ stepName: 's', stepType, attempt: 1, durationMs: 5, dataRef: 'exd_2' });

describe('routeEvent', () => {
  it('drives a run that was triggered, retried from its failed step, or resumed, from the time of the event', () => {
    expect(route('flowrun.triggered.v1', triggered)).toEqual({ kind: 'drive', runId: 'run_1', runningSince: '2024-01-15T10:30:00.000Z', parentRunId: 'parent_1' });
    expect(route('flowrun.retried.v1', { strategy: 'FROM_FAILED_STEP', attempt: 2, fromStepName: 's', newRunId: null })).toEqual({
      kind: 'drive', runId: 'run_1', runningSince: '2024-01-15T10:30:00.000Z',
    });
    expect(route('flowrun.resumed.v1', { stepName: 's', requestId: 'req', dataRef: 'exd' })).toMatchObject({ kind: 'drive', runId: 'run_1' });
  });

  it('ignores a retry on the latest version (the new run has its own triggered event)', () => {
    expect(route('flowrun.retried.v1', { strategy: 'ON_LATEST_VERSION', attempt: 1, fromStepName: null, newRunId: 'run_2' })).toEqual({ kind: 'ignore' });
  });

  it('drives a parent whose subflow step finished, and nothing for other steps', () => {
    expect(route('flowrun.step.succeeded.v1', step('subflow'))).toEqual({ kind: 'drive', runId: 'run_1' });
    expect(route('flowrun.step.failed.v1', step('subflow'))).toEqual({ kind: 'drive', runId: 'run_1' });
    expect(route('flowrun.step.succeeded.v1', step('http'))).toEqual({ kind: 'ignore' });
    expect(route('flowrun.step.started.v1', { stepName: 's', stepType: 'subflow', attempt: 1 })).toEqual({ kind: 'ignore' });
  });

  it('looks for a waiting parent when a run ends, whatever the end', () => {
    expect(route('flowrun.succeeded.v1', { durationMs: 1 })).toEqual({ kind: 'child-ended', runId: 'run_1' });
    expect(route('flowrun.failed.v1', { failedStepName: 's', durationMs: 1 })).toEqual({ kind: 'child-ended', runId: 'run_1' });
    expect(route('flowrun.stopped.v1', { reason: 'x' })).toEqual({ kind: 'child-ended', runId: 'run_1' });
    expect(route('flowrun.timed-out.v1', { reason: 'WORKER_LOST' })).toEqual({ kind: 'child-ended', runId: 'run_1' });
    expect(route('flowrun.quota-exceeded.v1', { quota: 1 })).toEqual({ kind: 'child-ended', runId: 'run_1' });
    expect(route('flowrun.internal-error.v1', { reason: 'x' })).toEqual({ kind: 'child-ended', runId: 'run_1' });
  });

  it('skips events it has nothing to do with, types it does not know, and invalid messages', () => {
    expect(route('flowrun.paused.v1', { stepName: 's', requestId: 'r', resumeDeadline: null })).toEqual({ kind: 'ignore' });
    expect(route('flowrun.archived.v1', {})).toEqual({ kind: 'ignore' });
    expect(route('flowrun.execution-data-purged.v1', { reason: 'RETENTION' })).toEqual({ kind: 'ignore' });
    expect(route('flowrun.teleported.v1', { anything: true })).toEqual({ kind: 'ignore' });
    expect(route('flowrun.triggered.v1', { nope: 1 })).toEqual({ kind: 'ignore' });
    expect(routeEvent(parseEnvelope(Buffer.from('not json')))).toEqual({ kind: 'ignore' });
    expect(routeEvent(parseEnvelope(null))).toEqual({ kind: 'ignore' });
  });
});

describe('eventLogFields', () => {
  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

  it('names the run, the event and the trace of a message, known type or not', () => {
    const headers = { traceparent, 'ce-id': 'evt_1' };
    expect(eventLogFields(parseEnvelope(envelope('flowrun.resumed.v1', { stepName: 's', requestId: 'r', dataRef: 'd' })), { key: 'run_1', headers })).toEqual({
      runId: 'run_1', eventId: 'evt_1', eventType: 'flowrun.resumed.v1', seq: 1, traceId: '0af7651916cd43dd8448eb211c80319c',
    });
    expect(eventLogFields(parseEnvelope(envelope('flowrun.teleported.v1', {})), { key: 'run_1', headers })).toMatchObject({
      runId: 'run_1', eventId: 'evt_1', eventType: 'flowrun.teleported.v1', traceId: '0af7651916cd43dd8448eb211c80319c',
    });
  });

  it('has no trace id without a valid traceparent, and only the key and ce-id of an invalid message', () => {
    expect(eventLogFields(parseEnvelope(envelope('flowrun.archived.v1', {})), { key: 'run_1', headers: { traceparent: 'garbage' } }).traceId).toBeUndefined();
    expect(eventLogFields(parseEnvelope(Buffer.from('not json')), { key: 'run_9', headers: { 'ce-id': 'evt_9', traceparent } })).toEqual({
      runId: 'run_9', eventId: 'evt_9', traceId: '0af7651916cd43dd8448eb211c80319c',
    });
  });
});
