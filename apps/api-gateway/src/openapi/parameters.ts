import { z } from 'zod';
import { ResumeRequestIdSchema } from '../requests';
import type { ParameterObject } from './document-types';
import { jsonSchemaOf } from './json-schema';

/**
 * Parameters many operations share. Path parameters are plain strings except `requestId`, which the
 * gateway validates (`ResumeRequestIdSchema`). The two headers below have no zod schema in the
 * gateway (they are parsed by hand where they are read), so their rules are stated here once;
 * `openapi.spec.ts` checks the Idempotency-Key rule against the gateway's parser.
 */

const PATH_PARAMETERS: Readonly<Record<string, { description: string; schema: z.ZodType }>> = {
  id: { description: 'The flow run id', schema: z.string() },
  flowId: { description: 'The flow id', schema: z.string() },
  requestId: { description: "The paused step's request id (from the run's `pause.requestId`): single use", schema: ResumeRequestIdSchema },
};

/** The path parameters of an OpenAPI path template (`/api/v1/flow-runs/{id}/retry`), in order. */
export function pathParameters(template: string): ParameterObject[] {
  return [...template.matchAll(/\{(\w+)\}/g)].map(([, name]) => {
    const known = PATH_PARAMETERS[name];
    if (!known) throw new Error(`no documentation for path parameter "${name}" of ${template}`);
    return { name, in: 'path', required: true, description: known.description, schema: jsonSchemaOf(known.schema, 'input') };
  });
}

/** The printable-ASCII rule of `parseIdempotencyKey` (request-fingerprint.ts). */
export const IdempotencyKeySchema = z.string().regex(/^[\x20-\x7e]{1,255}$/);

export const IDEMPOTENCY_KEY_PARAMETER: ParameterObject = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    'Makes the POST safe to retry: the same key with the same request (method, path, body) within the TTL ' +
    '(default 24 h) answers the first answer again, with `Idempotent-Replayed: true`, and does nothing twice. ' +
    "Scoped to the API key's project (resume routes: to the path). Another request with the key: 422 " +
    '`IDEMPOTENCY_KEY_REUSED`; the first still in flight: 409 `IDEMPOTENCY_KEY_IN_PROGRESS`. 5xx answers are not kept.',
  schema: jsonSchemaOf(IdempotencyKeySchema, 'input'),
};

export const TRACEPARENT_PARAMETER: ParameterObject = {
  name: 'traceparent',
  in: 'header',
  required: false,
  description:
    'W3C trace context (`00-<trace id>-<parent id>-<flags>`). A valid one is continued into the command service ' +
    'and the run events; anything else is ignored and a new trace started.',
  schema: jsonSchemaOf(z.string(), 'input'),
};

/** `?projectId=`, optional where the path already names the entity: when given it must be the key's. */
export const OPTIONAL_PROJECT_PARAMETER: ParameterObject = {
  name: 'projectId',
  in: 'query',
  required: false,
  description: "Optional; when given it must be the API key's project (another answers 404, `entityType: project`)",
  schema: jsonSchemaOf(z.string(), 'input'),
};
