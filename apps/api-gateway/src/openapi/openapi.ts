import type { ErrorCode } from '@flowruns/contracts';
import type { HeaderObject, OpenApiDocument, OperationObject, PathItemObject, ResponseObject } from './document-types';
import { errorResponses } from './error-responses';
import { componentSchemas } from './json-schema';
import { ROUTES, type RouteDoc } from './operations';
import { IDEMPOTENCY_KEY_PARAMETER, TRACEPARENT_PARAMETER, pathParameters } from './parameters';
import { REQUEST_SCHEMAS, RESPONSE_SCHEMAS } from './schemas';

/** What any public route (`/api/v1/...`) may answer: the rate limit, an outage, a bug. */
const PUBLIC_ERRORS: readonly ErrorCode[] = ['RATE_LIMITED', 'SERVICE_UNAVAILABLE', 'INTERNAL_ERROR'];
/** What any public POST may answer: its body or Idempotency-Key refused. */
const POST_ERRORS: readonly ErrorCode[] = ['VALIDATION', 'PAYLOAD_TOO_LARGE', 'IDEMPOTENCY_KEY_REUSED', 'IDEMPOTENCY_KEY_IN_PROGRESS'];

const RATE_LIMIT_HEADERS: Record<string, HeaderObject> = {
  'RateLimit-Limit': { description: 'Requests allowed per window (this gateway instance)', schema: { type: 'integer' } },
  'RateLimit-Remaining': { description: 'Requests left in this window', schema: { type: 'integer' } },
  'RateLimit-Reset': { description: 'Seconds until the window resets', schema: { type: 'integer' } },
};
const REPLAYED_HEADER: Record<string, HeaderObject> = {
  'Idempotent-Replayed': {
    description: '`true` when this is the stored answer of an earlier request with the same Idempotency-Key',
    schema: { type: 'string', enum: ['true'] },
  },
};

const DESCRIPTION = `The Activepieces Flow Runs API: trigger flows, read and control their runs.

**Auth.** \`Authorization: Bearer sk-…\`, an API key scoped to one project (\`npm run cli -- api-keys:create --project <id>\`). Another project's runs and flows answer exactly like unknown ones. The resume routes take no key: the request id is the capability.

**Errors.** Every error is \`{ statusCode, code, params }\` (\`ErrorEnvelope\`); each operation lists its statuses with their codes. Validation errors name the first offending field in \`params.field\`.

**Retries.** Every POST accepts \`Idempotency-Key\`; send one when retrying a command that timed out, or a trigger may start a second run.

**Rate limits.** Per API key (resume routes: per client address) and per gateway instance; past it \`429 RATE_LIMITED\` with \`Retry-After\`. Answers carry \`RateLimit-*\` headers.

Generated from the zod schemas the gateway validates with (\`apps/api-gateway/src/openapi\`).`;

/**
 * The gateway's OpenAPI 3.1 document: routes from `operations.ts`, every schema converted from zod
 * (`schemas.ts`), errors from the contract's codes. Pure, so tests and a generator script can
 * build it without booting the gateway.
 */
export function buildOpenApiDocument(): OpenApiDocument {
  const paths: Record<string, PathItemObject> = {};
  for (const route of ROUTES) paths[route.path] = { ...paths[route.path], [route.method]: operation(route) };
  return {
    openapi: '3.1.0',
    info: { title: 'Flow Runs API', version: 'v1', description: DESCRIPTION },
    tags: [
      { name: 'flow-runs', description: 'Read, retry, cancel, archive and export runs' },
      { name: 'requests', description: 'Resume a paused run (no API key)' },
      { name: 'flows', description: 'Create flows, publish versions, trigger runs' },
      { name: 'api-keys', description: 'The calling API key' },
      { name: 'operations', description: 'Health and metrics (not under /api)' },
    ],
    security: [{ apiKey: [] }],
    paths,
    components: {
      schemas: { ...componentSchemas(REQUEST_SCHEMAS, 'input'), ...componentSchemas(RESPONSE_SCHEMAS, 'output') },
      securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', bearerFormat: 'sk-…', description: "An API key of the project: `Authorization: Bearer sk-…`" },
      },
    },
  };
}

/** One route's operation: its own parts, plus what every route of its kind shares. */
function operation(route: RouteDoc): OperationObject {
  const isPublic = route.path.startsWith('/api/v1/');
  const isPost = route.method === 'post';
  const errors: ErrorCode[] = isPublic
    ? [...route.errors, ...(route.auth ? (['UNAUTHORIZED'] as const) : []), ...(isPost ? POST_ERRORS : []), ...PUBLIC_ERRORS]
    : route.errors;
  const successHeaders = isPublic ? { ...RATE_LIMIT_HEADERS, ...(isPost ? REPLAYED_HEADER : {}) } : {};
  const successes = Object.fromEntries(
    Object.entries(route.responses).map(([status, r]): [string, ResponseObject] => {
      const headers = { ...r.headers, ...successHeaders };
      return [status, Object.keys(headers).length ? { ...r, headers } : r];
    }),
  );
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    tags: [route.tag],
    ...(route.auth ? {} : { security: [] }),
    parameters: [
      ...pathParameters(route.path),
      ...(route.parameters ?? []),
      ...(isPublic ? [TRACEPARENT_PARAMETER] : []),
      ...(isPublic && isPost ? [IDEMPOTENCY_KEY_PARAMETER] : []),
    ],
    ...(route.body ? { requestBody: route.body } : {}),
    responses: { ...successes, ...errorResponses(errors) },
  };
}
