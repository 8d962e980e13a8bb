import type { Flow, FlowRun, FlowRunWithSteps, ResumeResult } from '@flowruns/contracts';
import type { RunPage } from '@flowruns/run-views';

/**
 * Example answers for the document, with the reference's values (`run_abc123`, "Customer
 * Onboarding"). `openapi.spec.ts` parses every example in the document with its component's zod
 * schema, so an example that stops matching the API fails a test instead of misleading a reader.
 */

export const EXAMPLE_RUN: FlowRun = {
  id: 'run_abc123',
  projectId: 'project_123',
  flowId: 'flow_xyz789',
  flowVersionId: 'version_456',
  flowVersion: { displayName: 'Customer Onboarding' },
  status: 'SUCCEEDED',
  startTime: '2024-01-15T10:30:00.000Z',
  finishTime: '2024-01-15T10:30:15.000Z',
  environment: 'PRODUCTION',
  triggeredBy: 'key_01a22253-a7a8-77fa-b847-269f6d30017c',
  tags: ['onboarding', 'customer'],
  stepsCount: 2,
  failedStepName: null,
  parentRunId: null,
  retryOf: null,
  attempt: 1,
  pause: null,
  archivedAt: null,
  executionDataPurgedAt: null,
  created: '2024-01-15T10:30:00.000Z',
};

export const EXAMPLE_RUN_WITH_STEPS: FlowRunWithSteps = {
  ...EXAMPLE_RUN,
  steps: {
    trigger: { type: 'TRIGGER', output: { customer: 7 } },
    send_email: {
      type: 'http',
      status: 'SUCCEEDED',
      input: { url: 'https://mail.example.com/send', body: { to: 'ada@example.com' } },
      output: { status: 202 },
      duration: 1200,
      attempt: 1,
    },
  },
  logsFileId: null,
};

export const EXAMPLE_RUN_PAGE: RunPage = { data: [EXAMPLE_RUN], next: 'eyJpZCI6InJ1bl9hYmMxMjMifQ', previous: null };

export const EXAMPLE_FLOW: Flow = {
  id: 'flow_xyz789',
  projectId: 'project_123',
  displayName: 'Customer Onboarding',
  tags: ['onboarding'],
  created: '2024-01-10T09:00:00.000Z',
  updated: '2024-01-10T09:00:00.000Z',
  version: {
    id: 'version_456',
    version: 1,
    displayName: 'Customer Onboarding',
    steps: [
      { name: 'send_email', type: 'http', settings: { url: 'https://mail.example.com/send', body: { to: '{{trigger.email}}' } } },
      { name: 'manager_approval', type: 'approval', settings: {} },
    ],
  },
};

export const EXAMPLE_RESUME_RESULT: ResumeResult = {
  runId: 'run_abc123',
  stepName: 'manager_approval',
  output: { approved: true },
};
