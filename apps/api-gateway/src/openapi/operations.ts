import type { ErrorCode } from '@flowruns/contracts';
import { ExportRunsQuerySchema, ListFlowsQuerySchema, ListRunsQuerySchema, TriggerHeadersSchema } from '../requests';
import type { HeaderObject, HttpMethod, ParameterObject, RequestBodyObject, ResponseObject } from './document-types';
import { EXAMPLE_FLOW, EXAMPLE_RESUME_RESULT, EXAMPLE_RUN, EXAMPLE_RUN_PAGE, EXAMPLE_RUN_WITH_STEPS } from './examples';
import { componentRef, parametersOf } from './json-schema';
import { OPTIONAL_PROJECT_PARAMETER } from './parameters';
import type { RequestSchemaName, ResponseSchemaName } from './schemas';

/**
 * Every route the gateway serves, as the document shows it. What is common to a kind of route
 * (path parameters, `traceparent`, `Idempotency-Key` on POSTs, 401 / 429 / 5xx, the envelope) is
 * added by `openapi.ts`; here is what is particular to each. `openapi.int.spec.ts` checks this
 * list against the routes Nest actually registered, both ways.
 */
export interface RouteDoc {
  method: HttpMethod;
  /** OpenAPI path template: `{id}`, not `:id`. */
  path: string;
  operationId: string;
  tag: 'flow-runs' | 'flows' | 'requests' | 'api-keys' | 'operations';
  summary: string;
  description?: string;
  /** Whether the route needs `Authorization: Bearer <API key>`. */
  auth: boolean;
  /** Query and header parameters (path parameters are derived from `path`). */
  parameters?: ParameterObject[];
  body?: RequestBodyObject;
  /** The success answers. */
  responses: Record<string, ResponseObject>;
  /** The error codes particular to this route (the common ones are added). */
  errors: ErrorCode[];
}

function jsonAnswer(description: string, schema: ResponseSchemaName, example: unknown, headers?: Record<string, HeaderObject>): ResponseObject {
  return { description, ...(headers ? { headers } : {}), content: { 'application/json': { schema: componentRef(schema), example } } };
}

function jsonBody(schema: RequestSchemaName, example: unknown, description?: string): RequestBodyObject {
  return { ...(description ? { description } : {}), required: true, content: { 'application/json': { schema: componentRef(schema), example } } };
}

/** A body that may be any JSON value (a trigger payload, a resume input); none is `{}`. */
function anyJsonBody(description: string, example: unknown): RequestBodyObject {
  return { description, required: false, content: { 'application/json': { schema: {}, example } } };
}

const listRunsParameters = {
  projectId: "Required; must be the API key's project",
  flowId: 'Only runs of this flow',
  status: 'Any of these statuses (repeat: `status=FAILED&status=TIMEOUT`, or `status[]=…`)',
  tags: 'Runs carrying all of these tags (repeatable)',
  failedStepName: 'Runs that failed at this step',
  createdAfter: 'Created at or after (ISO 8601 with a time zone)',
  createdBefore: 'Created at or before (ISO 8601 with a time zone)',
  flowRunIds: 'Only these run ids (repeatable, up to 100)',
  includeArchived: 'Include archived runs',
  limit: 'Page size, an integer from 1 to 100',
  cursor: '`next` or `previous` of a page; any other value is a 400',
};

const BULK_FILTERS =
  'Strict: an unknown field (a misspelt `flowID`) is a 400 naming it, because dropping it would widen the operation; ' +
  'no body at all is a 400 (`{}` selects every run the operation can change). `flowRunIds`, when given, is the whole ' +
  'selection; the other filters are then ignored. `createdAfter`/`createdBefore` are inclusive. Runs changed by ' +
  'someone else meanwhile are skipped and not counted.';

const RUNNING = { ...EXAMPLE_RUN, status: 'RUNNING', finishTime: null } as const;
const location: HeaderObject = { description: 'The new run: `/api/v1/flow-runs/<id>`', schema: { type: 'string' } };

export const ROUTES: readonly RouteDoc[] = [
  {
    method: 'get',
    path: '/api/v1/flow-runs',
    operationId: 'listFlowRuns',
    tag: 'flow-runs',
    summary: 'List flow runs',
    description:
      'Newest first, keyset pagination: follow `next` (older) and `previous` (newer). Items leave out `steps` and ' +
      '`logsFileId`. Unknown parameters are ignored.',
    auth: true,
    parameters: parametersOf(ListRunsQuerySchema, 'query', listRunsParameters),
    responses: { 200: jsonAnswer('A page of runs', 'FlowRunPage', EXAMPLE_RUN_PAGE) },
    errors: ['VALIDATION', 'ENTITY_NOT_FOUND'],
  },
  {
    method: 'get',
    path: '/api/v1/flow-runs/export',
    operationId: 'exportFlowRuns',
    tag: 'flow-runs',
    summary: 'Export flow runs with their steps (NDJSON)',
    description:
      "The list's filters without paging: every matching run, one `FlowRunWithSteps` per line, newest first, streamed. " +
      'A failure after the first line cuts the connection, so an incomplete transfer is never mistaken for a complete file.',
    auth: true,
    parameters: parametersOf(ExportRunsQuerySchema, 'query', listRunsParameters),
    responses: {
      200: {
        description: 'Newline-delimited JSON, one run with its steps per line',
        headers: { 'Content-Disposition': { description: '`attachment; filename="flow-runs-<projectId>.ndjson"`', schema: { type: 'string' } } },
        content: { 'application/x-ndjson': { schema: componentRef('FlowRunWithSteps'), example: EXAMPLE_RUN_WITH_STEPS } },
      },
    },
    errors: ['VALIDATION', 'ENTITY_NOT_FOUND'],
  },
  {
    method: 'get',
    path: '/api/v1/flow-runs/{id}',
    operationId: 'getFlowRun',
    tag: 'flow-runs',
    summary: 'Get a flow run with its steps',
    description:
      "Steps keyed by name (the trigger payload under `trigger`); step data is missing once purged. Another project's run " +
      'answers exactly like an unknown one. A run triggered a moment ago is waited for (read-your-writes); if it is still ' +
      'not readable at the deadline: 503 with `Retry-After`.',
    auth: true,
    parameters: [OPTIONAL_PROJECT_PARAMETER],
    responses: { 200: jsonAnswer('The run', 'FlowRunWithSteps', EXAMPLE_RUN_WITH_STEPS) },
    errors: ['ENTITY_NOT_FOUND'],
  },
  {
    method: 'post',
    path: '/api/v1/flow-runs/{id}/retry',
    operationId: 'retryFlowRun',
    tag: 'flow-runs',
    summary: 'Retry a flow run',
    description:
      '`FROM_FAILED_STEP` continues the same run in a new attempt (200); `ON_LATEST_VERSION` starts a new run of the ' +
      'latest flow version (201 + `Location`).',
    auth: true,
    body: jsonBody('RetryFlowRun', { strategy: 'FROM_FAILED_STEP', projectId: 'project_123' }),
    responses: {
      200: jsonAnswer('FROM_FAILED_STEP: the same run, in its new attempt', 'FlowRun', { ...RUNNING, attempt: 2 }),
      201: jsonAnswer('ON_LATEST_VERSION: the new run', 'FlowRun', { ...RUNNING, id: 'run_def456', retryOf: 'run_abc123' }, { Location: location }),
    },
    errors: ['VALIDATION', 'ENTITY_NOT_FOUND', 'INVALID_TRANSITION', 'RUN_ARCHIVED', 'MAX_ATTEMPTS_REACHED', 'EXECUTION_DATA_PURGED'],
  },
  {
    method: 'post',
    path: '/api/v1/flow-runs/{id}/erase',
    operationId: 'eraseFlowRunData',
    tag: 'flow-runs',
    summary: "Erase a finished run's execution data now",
    description:
      "Step inputs and outputs, the trigger payload and logs are removed (recorded as a purge); the run's metadata " +
      'stays. `erased: false` when they were already gone.',
    auth: true,
    parameters: [OPTIONAL_PROJECT_PARAMETER],
    responses: { 200: jsonAnswer('What was removed', 'EraseResult', { runId: 'run_abc123', erased: true, records: 3, bytes: 5120 }) },
    errors: ['ENTITY_NOT_FOUND', 'INVALID_TRANSITION'],
  },
  {
    method: 'post',
    path: '/api/v1/flow-runs/cancel',
    operationId: 'cancelFlowRuns',
    tag: 'flow-runs',
    summary: 'Cancel flow runs in bulk',
    description: `Stops the selected RUNNING and PAUSED runs (and their descendants, not counted). ${BULK_FILTERS}`,
    auth: true,
    body: jsonBody('BulkCancel', { flowId: 'flow_xyz789', status: ['PAUSED', 'RUNNING'] }),
    responses: { 200: jsonAnswer('How many runs this request stopped', 'BulkCancelResult', { cancelled: 5 }) },
    errors: ['VALIDATION', 'ENTITY_NOT_FOUND'],
  },
  {
    method: 'post',
    path: '/api/v1/flow-runs/retry',
    operationId: 'retryFlowRuns',
    tag: 'flow-runs',
    summary: 'Retry flow runs in bulk',
    description: `Retries the selected runs with the strategy. ${BULK_FILTERS}`,
    auth: true,
    body: jsonBody('BulkRetry', { flowId: 'flow_xyz789', strategy: 'FROM_FAILED_STEP', status: ['FAILED'], createdAfter: '2024-01-15T00:00:00.000Z' }),
    responses: { 200: jsonAnswer('How many runs this request retried', 'BulkRetryResult', { retried: 12 }) },
    errors: ['VALIDATION', 'ENTITY_NOT_FOUND'],
  },
  {
    method: 'post',
    path: '/api/v1/flow-runs/archive',
    operationId: 'archiveFlowRuns',
    tag: 'flow-runs',
    summary: 'Archive flow runs in bulk',
    description: `Archived runs leave the list unless \`includeArchived=true\`; already archived ones are not counted. ${BULK_FILTERS}`,
    auth: true,
    body: jsonBody('BulkArchive', { flowId: 'flow_xyz789', createdBefore: '2024-01-01T00:00:00.000Z' }),
    responses: { 200: jsonAnswer('How many runs this request archived', 'BulkArchiveResult', { archived: 40 }) },
    errors: ['VALIDATION', 'ENTITY_NOT_FOUND'],
  },
  {
    method: 'post',
    path: '/api/v1/flow-runs/{id}/requests/{requestId}/sync',
    operationId: 'resumeFlowRunSync',
    tag: 'requests',
    summary: 'Resume a paused run and get the step output',
    description:
      'No API key: the request id is the capability (unguessable, single use). The body, any JSON, is the human input. ' +
      'A request id the run did not issue answers 404 `PAUSE_REQUEST_MISMATCH`, the same whether the run exists or not and whatever its status; ' +
      'only for an id the run issued: 404 with `reason: ALREADY_USED` once used, 410 once expired, 409 once the run stopped waiting on it.',
    auth: false,
    body: anyJsonBody('The input for the paused step (none is `{}`)', { approved: true }),
    responses: { 200: jsonAnswer("The paused step's output", 'ResumeResult', EXAMPLE_RESUME_RESULT) },
    errors: ['VALIDATION', 'PAUSE_REQUEST_MISMATCH', 'INVALID_TRANSITION', 'PAUSE_EXPIRED'],
  },
  {
    method: 'post',
    path: '/api/v1/flow-runs/{id}/requests/{requestId}',
    operationId: 'resumeFlowRun',
    tag: 'requests',
    summary: 'Resume a paused run',
    description: 'No API key, as the sync variant, with the same errors; answers as soon as the resume is recorded, never waiting for the run.',
    auth: false,
    body: anyJsonBody('The input for the paused step (none is `{}`)', { approved: true }),
    responses: { 202: jsonAnswer('The resume is recorded', 'ResumeAccepted', { accepted: true }) },
    errors: ['VALIDATION', 'PAUSE_REQUEST_MISMATCH', 'INVALID_TRANSITION', 'PAUSE_EXPIRED'],
  },
  {
    method: 'post',
    path: '/api/v1/flows',
    operationId: 'createFlow',
    tag: 'flows',
    summary: 'Create a flow',
    auth: true,
    body: jsonBody('CreateFlow', {
      projectId: 'project_123',
      displayName: 'Customer Onboarding',
      tags: ['onboarding'],
      steps: EXAMPLE_FLOW.version.steps,
    }),
    responses: { 201: jsonAnswer('The flow with its first version', 'Flow', EXAMPLE_FLOW) },
    errors: ['VALIDATION', 'FLOW_DEFINITION_INVALID', 'ENTITY_NOT_FOUND'],
  },
  {
    method: 'get',
    path: '/api/v1/flows',
    operationId: 'listFlows',
    tag: 'flows',
    summary: "List the project's flows",
    auth: true,
    parameters: parametersOf(ListFlowsQuerySchema, 'query', { projectId: "Required; must be the API key's project" }),
    responses: { 200: jsonAnswer('The flows', 'FlowList', { data: [EXAMPLE_FLOW] }) },
    errors: ['VALIDATION', 'ENTITY_NOT_FOUND'],
  },
  {
    method: 'get',
    path: '/api/v1/flows/{flowId}',
    operationId: 'getFlow',
    tag: 'flows',
    summary: 'Get a flow with its latest version',
    auth: true,
    parameters: [OPTIONAL_PROJECT_PARAMETER],
    responses: { 200: jsonAnswer('The flow', 'Flow', EXAMPLE_FLOW) },
    errors: ['ENTITY_NOT_FOUND'],
  },
  {
    method: 'post',
    path: '/api/v1/flows/{flowId}/versions',
    operationId: 'publishFlowVersion',
    tag: 'flows',
    summary: 'Publish a new version of a flow',
    description: "The new version becomes the flow's latest: new runs and `ON_LATEST_VERSION` retries use it. `projectId` defaults to the key's.",
    auth: true,
    body: jsonBody('PublishFlowVersion', { steps: EXAMPLE_FLOW.version.steps }),
    responses: {
      201: jsonAnswer('The flow with its new latest version', 'Flow', { ...EXAMPLE_FLOW, version: { ...EXAMPLE_FLOW.version, id: 'version_457', version: 2 } }),
    },
    errors: ['VALIDATION', 'FLOW_DEFINITION_INVALID', 'ENTITY_NOT_FOUND'],
  },
  {
    method: 'post',
    path: '/api/v1/flows/{flowId}/run',
    operationId: 'triggerFlow',
    tag: 'flows',
    summary: 'Trigger a run of the flow',
    description:
      "Runs the flow's latest version with the body as the trigger payload. Over the project's monthly quota the run is " +
      'still recorded, with status `QUOTA_EXCEEDED`. A child run names its parent with `ap-parent-run-id`.',
    auth: true,
    parameters: parametersOf(TriggerHeadersSchema, 'header', {
      'ap-parent-run-id': "The parent run (of the key's project); the new run is its child",
      'ap-fail-parent-on-failure': 'Whether the child failing fails the parent (default false)',
    }),
    body: anyJsonBody('The trigger payload, any JSON value (none is `{}`)', { customer: 7, email: 'ada@example.com' }),
    responses: { 201: jsonAnswer('The new run', 'FlowRun', RUNNING) },
    errors: ['VALIDATION', 'ENTITY_NOT_FOUND'],
  },
  {
    method: 'get',
    path: '/api/v1/me',
    operationId: 'getApiKeyIdentity',
    tag: 'api-keys',
    summary: 'The calling API key: its id and its project',
    description: 'For a client that holds only a key (the runs dashboard at `/ui`) to learn the `projectId` the other routes take.',
    auth: true,
    responses: { 200: jsonAnswer('The key and its project', 'ApiKeyIdentity', { projectId: 'project_123', keyId: 'key_01a22253-a7a8-77fa-b847-269f6d30017c' }) },
    errors: [],
  },
  {
    method: 'get',
    path: '/health/live',
    operationId: 'liveness',
    tag: 'operations',
    summary: 'Liveness: the process answers',
    auth: false,
    responses: { 200: { description: 'Alive (terminus body)', content: { 'application/json': { schema: {} } } } },
    errors: [],
  },
  {
    method: 'get',
    path: '/health/ready',
    operationId: 'readiness',
    tag: 'operations',
    summary: 'Readiness: Postgres, Kafka and the command service answer',
    auth: false,
    responses: {
      200: { description: 'Ready (terminus body: each dependency `up`)', content: { 'application/json': { schema: {} } } },
      503: { description: 'Not ready, or draining (terminus body names what is down)', content: { 'application/json': { schema: {} } } },
    },
    errors: [],
  },
  {
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    tag: 'operations',
    summary: 'Prometheus metrics',
    auth: false,
    responses: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } },
    errors: [],
  },
];
