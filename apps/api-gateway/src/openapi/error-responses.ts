import { HTTP_STATUS_BY_CODE, type ErrorCode, type ErrorEnvelope } from '@flowruns/contracts';
import type { HeaderObject, ResponseObject } from './document-types';
import { componentRef } from './json-schema';

/**
 * What each error code means to a client, with an example envelope's `params`. A `Record` over
 * every code, so a code added to the contract does not compile until it is documented here.
 */
const ERROR_DOCS: Readonly<Record<ErrorCode, { meaning: string; params: Record<string, unknown> }>> = {
  VALIDATION: {
    meaning: 'a parameter, header or body field is invalid (`params.field` names the first one); also malformed JSON (`field: body`)',
    params: { field: 'limit', message: 'an integer from 1 to 100' },
  },
  UNAUTHORIZED: {
    meaning: 'the API key is missing, malformed, unknown or revoked',
    params: { message: 'an API key is required: Authorization: Bearer <key>' },
  },
  ENTITY_NOT_FOUND: {
    meaning: "no such run or flow in the key's project, or a `projectId` that is not the key's (`entityType: project`)",
    params: { entityType: 'flow_run', entityId: 'run_abc123', message: 'Flow run not found' },
  },
  INVALID_TRANSITION: {
    meaning: 'the run is not in a status that allows this (e.g. retrying a run that has not failed, resuming with the id of a pause the run no longer waits on)',
    params: { entityType: 'flow_run', entityId: 'run_abc123', status: 'RUNNING' },
  },
  RUN_ALREADY_EXISTS: { meaning: 'a run with this id already exists', params: { entityType: 'flow_run', entityId: 'run_abc123' } },
  RUN_ARCHIVED: { meaning: 'the run is archived', params: { entityType: 'flow_run', entityId: 'run_abc123' } },
  EXECUTION_DATA_PURGED: {
    meaning: "the run's execution data is gone (retention or erase), so it cannot be retried from a step",
    params: { entityType: 'flow_run', entityId: 'run_abc123' },
  },
  MAX_ATTEMPTS_REACHED: {
    meaning: 'the run was retried as often as allowed',
    params: { entityType: 'flow_run', entityId: 'run_abc123', attempts: 10, maxAttempts: 10 },
  },
  STEP_NOT_RUNNING: { meaning: 'the step is not running', params: { stepName: 'send_email' } },
  STEP_ALREADY_FINISHED: { meaning: 'the step has already finished', params: { stepName: 'send_email', status: 'SUCCEEDED' } },
  PAUSE_REQUEST_MISMATCH: {
    meaning: 'the run did not issue this request id (whether the run exists or not), or it was already used (`reason: ALREADY_USED`)',
    params: { entityType: 'flow_run_request', entityId: 'req_Zk3q8mW1s9Yh2pLx0vB7cN4tR6uJ5eAd' },
  },
  PAUSE_EXPIRED: {
    meaning: "the pause's resume deadline has passed",
    params: {
      entityType: 'flow_run_request',
      entityId: 'req_Zk3q8mW1s9Yh2pLx0vB7cN4tR6uJ5eAd',
      resumeDeadline: '2024-01-22T10:30:00.000Z',
      message: 'the resume request expired',
    },
  },
  LEASE_LOST: { meaning: 'another worker holds the run', params: { entityType: 'flow_run', entityId: 'run_abc123' } },
  QUOTA_EXCEEDED: { meaning: "the project's monthly run quota is used up", params: { quota: 1000 } },
  FLOW_DEFINITION_INVALID: {
    meaning: 'the steps do not make a runnable flow (e.g. an unknown step type, a duplicate step name)',
    params: { field: 'steps[1].type', stepName: 'notify', message: 'unknown step type "smtp"' },
  },
  PAYLOAD_TOO_LARGE: {
    meaning: 'the body is larger than the gateway accepts',
    params: { field: 'body', message: 'request body larger than 1048576 bytes' },
  },
  IDEMPOTENCY_KEY_REUSED: {
    meaning: 'this Idempotency-Key was already used for another request (method, path or body)',
    params: { header: 'Idempotency-Key', message: 'this Idempotency-Key was already used for another request (method, path or body)' },
  },
  IDEMPOTENCY_KEY_IN_PROGRESS: {
    meaning: 'the first request with this Idempotency-Key is still being answered; retry after `Retry-After`',
    params: { header: 'Idempotency-Key', message: 'a request with this Idempotency-Key is still in progress; retry later' },
  },
  RATE_LIMITED: {
    meaning: 'too many requests from this API key (without a key: this client address); retry after `Retry-After`',
    params: { retryAfterSeconds: 1, message: 'too many requests; retry in 1 s' },
  },
  SERVICE_UNAVAILABLE: {
    meaning: 'a dependency is unreachable or too slow, or a run exists but is not readable yet; safe to retry (commands with an Idempotency-Key)',
    params: { message: 'a dependency is unavailable; retry later' },
  },
  INTERNAL_ERROR: { meaning: 'an unexpected error (logged)', params: { message: 'internal error' } },
};

const retryAfter: HeaderObject = { description: 'Seconds to wait before retrying', schema: { type: 'integer', minimum: 1 } };

/** Headers that come with some error codes. */
const HEADERS_BY_CODE: Partial<Record<ErrorCode, Record<string, HeaderObject>>> = {
  UNAUTHORIZED: { 'WWW-Authenticate': { description: '`Bearer`', schema: { type: 'string' } } },
  IDEMPOTENCY_KEY_IN_PROGRESS: { 'Retry-After': retryAfter },
  RATE_LIMITED: {
    'Retry-After': retryAfter,
    'RateLimit-Limit': { description: 'Requests allowed per window', schema: { type: 'integer' } },
    'RateLimit-Remaining': { description: 'Requests left in this window', schema: { type: 'integer' } },
    'RateLimit-Reset': { description: 'Seconds until the window resets', schema: { type: 'integer' } },
  },
  SERVICE_UNAVAILABLE: { 'Retry-After': { ...retryAfter, description: 'Sent when waiting will help (a run not projected yet)' } },
};

/** An example envelope of `code`. */
export function errorExample(code: ErrorCode): ErrorEnvelope {
  return { statusCode: HTTP_STATUS_BY_CODE[code], code, params: ERROR_DOCS[code].params };
}

/**
 * The error responses of an operation, one per HTTP status (the contract's `HTTP_STATUS_BY_CODE`),
 * each the envelope narrowed to that status and its codes, with an example per code.
 */
export function errorResponses(codes: readonly ErrorCode[]): Record<string, ResponseObject> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) {
    const status = HTTP_STATUS_BY_CODE[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, group]) => {
      const headers = Object.assign({}, ...group.map((c) => HEADERS_BY_CODE[c] ?? {})) as Record<string, HeaderObject>;
      const response: ResponseObject = {
        description: group.map((c) => `\`${c}\`: ${ERROR_DOCS[c].meaning}`).join('; '),
        ...(Object.keys(headers).length ? { headers } : {}),
        content: {
          'application/json': {
            schema: {
              allOf: [
                componentRef('ErrorEnvelope'),
                { type: 'object', properties: { statusCode: { const: status }, code: { enum: group } } },
              ],
            },
            examples: Object.fromEntries(group.map((c) => [c, { value: errorExample(c) }])),
          },
        },
      };
      return [String(status), response];
    }),
  );
}
