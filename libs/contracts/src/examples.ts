import type { RunEventData, RunEventType } from './events';

/**
 * One example `data` per event type: the documentation shows them (scripts/gen-event-docs.ts) and
 * the contract tests parse them (events.spec.ts), so an example that stops matching its schema
 * fails a test. Not part of the library's API: both import this file directly.
 */
export const EVENT_EXAMPLES: { readonly [T in RunEventType]: RunEventData<T> } = {
  'flowrun.triggered.v1': {
    flowVersionId: '01a22253-a7f1-71da-909e-e730e9e6e99d',
    flowDisplayName: 'Customer Onboarding',
    environment: 'PRODUCTION',
    triggeredBy: 'key_01a22253-a7a8-77fa-b847-269f6d30017c',
    tags: ['onboarding', 'customer'],
    stepsCount: 5,
    parentRunId: null,
    failParentOnFailure: false,
    retryOf: null,
    triggerDataRef: 'exd_01a22253-a7f2-7b10-9d55-0c2b8e0a1f11',
    logsFileId: null,
  },
  'flowrun.step.started.v1': { stepName: 'send_email', stepType: 'http', attempt: 1 },
  'flowrun.step.succeeded.v1': {
    stepName: 'send_email',
    stepType: 'http',
    attempt: 1,
    durationMs: 1200,
    dataRef: 'exd_01a22253-a7f6-7e3d-a1c3-77e0b2d4c9aa',
  },
  'flowrun.step.failed.v1': {
    stepName: 'send_email',
    stepType: 'http',
    attempt: 1,
    durationMs: 30000,
    dataRef: 'exd_01a22253-a7f9-7c8f-b2a7-5e1d0f3c6b88',
  },
  'flowrun.paused.v1': {
    stepName: 'manager_approval',
    requestId: 'req_Zk3q8mW1s9Yh2pLx0vB7cN4tR6uJ5eAd',
    resumeDeadline: '2024-01-22T10:30:00.000Z',
  },
  'flowrun.resumed.v1': {
    stepName: 'manager_approval',
    requestId: 'req_Zk3q8mW1s9Yh2pLx0vB7cN4tR6uJ5eAd',
    dataRef: 'exd_01a22253-a7fd-7e3d-9c2b-1a0f9e8d7c6b',
  },
  'flowrun.succeeded.v1': { durationMs: 15000 },
  'flowrun.failed.v1': { failedStepName: 'send_email', durationMs: 31000 },
  'flowrun.stopped.v1': { reason: 'cancelled by key_01a22253-a7a8-77fa-b847-269f6d30017c' },
  'flowrun.timed-out.v1': { reason: 'EXECUTION_TIME' },
  'flowrun.quota-exceeded.v1': { quota: 1000 },
  'flowrun.internal-error.v1': { reason: 'engine process exited unexpectedly' },
  'flowrun.retried.v1': { strategy: 'FROM_FAILED_STEP', attempt: 2, fromStepName: 'send_email', newRunId: null },
  'flowrun.archived.v1': {},
  'flowrun.execution-data-purged.v1': { reason: 'ERASE' },
  'flowrun.execution-data-purged-through.v1': {
    reason: 'RETENTION',
    fromFinishedAt: '2026-08-01T09:14:03.250000Z',
    fromRunId: '01929a1e-7c3a-7f10-9d2b-4f1e2a3b4c5d',
    throughFinishedAt: '2026-08-01T10:02:41.118000Z',
    runs: 200,
  },
};
