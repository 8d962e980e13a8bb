import { HTTP_STATUS_BY_CODE, type ErrorCode } from '@flowruns/contracts';
import { parseIdempotencyKey } from '../idempotency/request-fingerprint';
import { ListRunsQuerySchema } from '../requests';
import type { JsonSchema, MediaTypeObject, OperationObject } from './document-types';
import { buildOpenApiDocument } from './openapi';
import { IdempotencyKeySchema } from './parameters';
import { ErrorEnvelopeSchema, REQUEST_SCHEMAS, RESPONSE_SCHEMAS } from './schemas';

const doc = buildOpenApiDocument();
const operations: { method: string; path: string; op: OperationObject }[] = Object.entries(doc.paths).flatMap(([path, item]) =>
  Object.entries(item).map(([method, op]) => ({ method, path, op: op as OperationObject })),
);
const publicOperations = operations.filter((o) => o.path.startsWith('/api/v1/'));

/** Every `$ref` anywhere in a value. */
function refsIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(refsIn);
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => (k === '$ref' && typeof v === 'string' ? [v] : refsIn(v)));
}

const componentOf = (schema: JsonSchema): string | null => {
  const ref = schema.$ref;
  return typeof ref === 'string' ? ref.replace('#/components/schemas/', '') : null;
};

describe('the OpenAPI document', () => {
  it('is structurally valid OpenAPI 3.1', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(typeof doc.info.title).toBe('string');
    expect(typeof doc.info.version).toBe('string');
    // Plain JSON: nothing that would be lost or changed when served.
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc);

    const tags = new Set(doc.tags.map((t) => t.name));
    const schemes = new Set(Object.keys(doc.components.securitySchemes));
    for (const requirement of doc.security) for (const s of Object.keys(requirement)) expect(schemes).toContain(s);
    const ids = operations.map((o) => o.op.operationId);
    expect(new Set(ids).size).toBe(ids.length);

    for (const o of operations) {
      expect(o.path).toMatch(/^\/[\w\-/{}]*$/);
      expect(['get', 'post']).toContain(o.method);
      for (const t of o.op.tags) expect(tags).toContain(t);
      for (const requirement of o.op.security ?? []) for (const s of Object.keys(requirement)) expect(schemes).toContain(s);

      // Path parameters are exactly the template's, all required.
      const template = [...o.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const inPath = o.op.parameters.filter((p) => p.in === 'path');
      expect(inPath.map((p) => p.name)).toEqual(template);
      for (const p of inPath) expect(p.required).toBe(true);
      const keys = o.op.parameters.map((p) => `${p.in}:${p.name.toLowerCase()}`);
      expect(new Set(keys).size).toBe(keys.length);
      // OpenAPI ignores these as header parameters (security and media types say them).
      for (const p of o.op.parameters.filter((q) => q.in === 'header')) {
        expect(['authorization', 'content-type', 'accept']).not.toContain(p.name.toLowerCase());
      }
      for (const p of o.op.parameters) expect(p.schema).toEqual(expect.any(Object));

      expect(Object.keys(o.op.responses).length).toBeGreaterThan(0);
      for (const [status, r] of Object.entries(o.op.responses)) {
        expect(status).toMatch(/^[1-5]\d\d$/);
        expect(r.description.length).toBeGreaterThan(0);
      }
      if (o.op.requestBody) expect(Object.keys(o.op.requestBody.content).length).toBeGreaterThan(0);
    }

    for (const ref of refsIn(doc)) {
      expect(ref).toMatch(/^#\/components\/schemas\//);
      expect(doc.components.schemas).toHaveProperty([ref.replace('#/components/schemas/', '')]);
    }
  });

  it('answers every error of every public operation with the envelope, its codes matching its status', () => {
    for (const o of publicOperations) {
      const errors = Object.entries(o.op.responses).filter(([status]) => Number(status) >= 400);
      expect(errors.some(([status]) => Number(status) < 500)).toBe(true);
      for (const [status, r] of errors) {
        const media = r.content?.['application/json'] as MediaTypeObject;
        type Narrowed = { properties: { statusCode: { const: number }; code: { enum: ErrorCode[] } } };
        const [envelope, narrowed] = media.schema.allOf as [JsonSchema, Narrowed];
        expect(componentOf(envelope)).toBe('ErrorEnvelope');
        expect(narrowed.properties.statusCode.const).toBe(Number(status));
        for (const code of narrowed.properties.code.enum) expect(HTTP_STATUS_BY_CODE[code]).toBe(Number(status));
        for (const example of Object.values(media.examples ?? {})) {
          expect(ErrorEnvelopeSchema.parse(example.value).statusCode).toBe(Number(status));
        }
      }
    }
  });

  it('lists the errors every public route shares: 401 with a key, 429, 503, and the Idempotency-Key errors on POSTs', () => {
    const codes = (op: OperationObject) =>
      Object.values(op.responses).flatMap((r) =>
        Object.values(r.content?.['application/json']?.examples ?? {}).map((e) => (e.value as { code: string }).code),
      );
    for (const o of publicOperations) {
      const listed = codes(o.op);
      expect(listed).toEqual(expect.arrayContaining(['RATE_LIMITED', 'SERVICE_UNAVAILABLE']));
      expect(listed.includes('UNAUTHORIZED')).toBe(o.op.security === undefined);
      if (o.method === 'post') {
        expect(listed).toEqual(expect.arrayContaining(['VALIDATION', 'PAYLOAD_TOO_LARGE', 'IDEMPOTENCY_KEY_REUSED', 'IDEMPOTENCY_KEY_IN_PROGRESS']));
        expect(o.op.parameters.map((p) => p.name)).toContain('Idempotency-Key');
      }
      expect(o.op.parameters.map((p) => p.name)).toContain('traceparent');
      expect(o.op.responses['429'].headers).toHaveProperty('Retry-After');
    }
  });

  it('has examples that the zod schemas accept', () => {
    let checked = 0;
    for (const o of operations) {
      const bodies = Object.values(o.op.requestBody?.content ?? {}).map((m) => ['request', m] as const);
      const answers = Object.entries(o.op.responses)
        .filter(([status]) => Number(status) < 400)
        .flatMap(([, r]) => Object.values(r.content ?? {}).map((m) => ['response', m] as const));
      for (const [side, media] of [...bodies, ...answers]) {
        const component = componentOf(media.schema);
        if (component === null || media.example === undefined) continue;
        const schemas: Record<string, { parse(v: unknown): unknown }> = side === 'request' ? REQUEST_SCHEMAS : RESPONSE_SCHEMAS;
        expect(() => schemas[component].parse(media.example)).not.toThrow();
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(15);
  });

  it('shows request schemas on their input side: query strings as sent, defaults optional, strict bodies closed', () => {
    const list = operations.find((o) => o.op.operationId === 'listFlowRuns')?.op as OperationObject;
    const query = Object.fromEntries(list.parameters.filter((p) => p.in === 'query').map((p) => [p.name, p]));
    expect(Object.keys(query).sort()).toEqual(Object.keys(ListRunsQuerySchema.shape).sort());
    expect(query.projectId.required).toBe(true);
    expect(query.limit).toMatchObject({ required: false, schema: { type: 'string', default: '10' } });
    expect(query.includeArchived.schema).toMatchObject({ enum: ['true', 'false'], default: 'false' });
    for (const repeatable of ['status', 'tags', 'flowRunIds']) {
      expect(query[repeatable]).toMatchObject({ style: 'form', explode: true, schema: { type: 'array' } });
    }
    const schemas = doc.components.schemas as Record<string, { required?: string[]; additionalProperties?: unknown }>;
    expect(schemas.CreateFlow.required).not.toContain('tags');
    expect(schemas.BulkCancel.additionalProperties).toBe(false);
    expect(schemas.BulkRetry.required).toEqual(['strategy']);
  });

  it("documents the Idempotency-Key rule the gateway's parser applies", () => {
    const valid = (k: string) => {
      try {
        return parseIdempotencyKey(k) === k;
      } catch {
        return false;
      }
    };
    for (const key of ['a', 'order-7 retry', '~'.repeat(255), '', 'x'.repeat(256), 'tab\there', 'é']) {
      expect(IdempotencyKeySchema.safeParse(key).success).toBe(valid(key));
    }
  });
});
