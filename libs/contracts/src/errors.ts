/**
 * Domain error codes. Contexts return these as typed values `{ code, params }`; only the gateway
 * maps them to HTTP statuses (see `HTTP_STATUS_BY_CODE`).
 */
export const ERROR_CODES = [
  'VALIDATION',
  'UNAUTHORIZED',
  'ENTITY_NOT_FOUND',
  'INVALID_TRANSITION',
  'RUN_ALREADY_EXISTS',
  'RUN_ARCHIVED',
  'EXECUTION_DATA_PURGED',
  'MAX_ATTEMPTS_REACHED',
  'STEP_NOT_RUNNING',
  'STEP_ALREADY_FINISHED',
  'PAUSE_REQUEST_MISMATCH',
  /** The resume request's deadline passed (the run timed out waiting, or is about to). */
  'PAUSE_EXPIRED',
  'LEASE_LOST',
  'QUOTA_EXCEEDED',
  'FLOW_DEFINITION_INVALID',
  'PAYLOAD_TOO_LARGE',
  /** An `Idempotency-Key` was sent again with another request (method, path or body). */
  'IDEMPOTENCY_KEY_REUSED',
  /** The first request with this `Idempotency-Key` has not been answered yet. */
  'IDEMPOTENCY_KEY_IN_PROGRESS',
  /** The API key (or, without one, the client address) sent more requests than its rate allows. */
  'RATE_LIMITED',
  'SERVICE_UNAVAILABLE',
  'INTERNAL_ERROR',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface DomainError {
  readonly code: ErrorCode;
  readonly params: Readonly<Record<string, unknown>>;
}

export const domainError = (code: ErrorCode, params: Record<string, unknown> = {}): DomainError => ({
  code,
  params,
});

export const isDomainError = (value: unknown): value is DomainError =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as { code?: unknown }).code === 'string' &&
  (ERROR_CODES as readonly string[]).includes((value as { code: string }).code) &&
  typeof (value as { params?: unknown }).params === 'object';

export const HTTP_STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  VALIDATION: 400,
  UNAUTHORIZED: 401,
  ENTITY_NOT_FOUND: 404,
  INVALID_TRANSITION: 409,
  RUN_ALREADY_EXISTS: 409,
  RUN_ARCHIVED: 409,
  EXECUTION_DATA_PURGED: 410,
  MAX_ATTEMPTS_REACHED: 409,
  STEP_NOT_RUNNING: 409,
  STEP_ALREADY_FINISHED: 409,
  PAUSE_REQUEST_MISMATCH: 404,
  PAUSE_EXPIRED: 410,
  LEASE_LOST: 409,
  QUOTA_EXCEEDED: 429,
  FLOW_DEFINITION_INVALID: 400,
  PAYLOAD_TOO_LARGE: 413,
  IDEMPOTENCY_KEY_REUSED: 422,
  IDEMPOTENCY_KEY_IN_PROGRESS: 409,
  RATE_LIMITED: 429,
  SERVICE_UNAVAILABLE: 503,
  INTERNAL_ERROR: 500,
};

/** The public error envelope: `{ statusCode, code, params }`. */
export interface ErrorEnvelope {
  statusCode: number;
  code: ErrorCode;
  params: Record<string, unknown>;
}
