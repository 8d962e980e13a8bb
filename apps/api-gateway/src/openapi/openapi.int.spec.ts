import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { RequestMethod, type INestApplication } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, ModulesContainer } from '@nestjs/core';
import { startTestGateway, type CallResult, type Reply, type TestGateway } from '../gateway.spec-helpers';
import type { JsonSchema, OperationObject } from './document-types';
import { EXAMPLE_FLOW, EXAMPLE_RUN } from './examples';
import { buildOpenApiDocument } from './openapi';
import { ErrorEnvelopeSchema, RESPONSE_SCHEMAS, type ResponseSchemaName } from './schemas';

/**
 * The document against the running gateway (in-process, real Postgres, the command service
 * faked): it lists exactly the routes Nest registered, it is served without a key, and real
 * answers have the statuses, codes and shapes it documents.
 */

const doc = buildOpenApiDocument();

/** `GET /api/v1/flow-runs/{id}` for every handler of every controller in the app. */
function registeredRoutes(app: INestApplication): string[] {
  const scanner = new MetadataScanner();
  return new DiscoveryService(app.get(ModulesContainer)).getControllers().flatMap(({ metatype }) => {
    const prototype = (metatype as { prototype: Record<string, object> }).prototype;
    const base = Reflect.getMetadata(PATH_METADATA, metatype as object) as string;
    return scanner.getAllMethodNames(prototype).flatMap((name) => {
      const handler = prototype[name];
      const path = Reflect.getMetadata(PATH_METADATA, handler) as string | undefined;
      if (path === undefined) return [];
      const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod];
      const segments = [base, path].flatMap((p) => p.split('/')).filter(Boolean);
      return [`${method} /${segments.map((s) => s.replace(/^:(\w+)$/, '{$1}')).join('/')}`];
    });
  });
}

function documentedRoutes(): string[] {
  return Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`));
}

/** Fails unless `answer` is one the document gives for the operation: its status, its code, its body's shape. */
function expectDocumented(method: 'get' | 'post', template: string, answer: CallResult): void {
  const op = doc.paths[template]?.[method] as OperationObject;
  const response = op.responses[String(answer.status)];
  expect({ route: `${method} ${template}`, status: answer.status, documented: response !== undefined }).toMatchObject({ documented: true });
  const schema = response.content?.['application/json']?.schema as JsonSchema;
  if (answer.status >= 400) {
    const envelope = ErrorEnvelopeSchema.parse(answer.body);
    const narrowed = (schema.allOf as { properties: { code: { enum: string[] } } }[])[1];
    expect(narrowed.properties.code.enum).toContain(envelope.code);
    return;
  }
  const component = String(schema.$ref).replace('#/components/schemas/', '') as ResponseSchemaName;
  expect(() => RESPONSE_SCHEMAS[component].parse(answer.body)).not.toThrow();
}

/** One request, what the fake command service answers it (if it is asked), and the status expected. */
interface Case {
  method: 'get' | 'post';
  template: string;
  path: string;
  key?: null;
  body?: unknown;
  headers?: Record<string, string>;
  reply?: Reply;
  status: number;
}

describe('the OpenAPI document, served by the gateway', () => {
  let gw: TestGateway;
  let key: string;

  beforeAll(async () => {
    gw = await startTestGateway();
    key = await gw.createKey('proj_a', 'key_a');
  });

  afterAll(async () => {
    await gw?.close();
  });

  it('documents every route Nest registered, and no other', () => {
    const registered = registeredRoutes(gw.app);
    expect(registered.filter((r) => r.includes(' /api/v1/')).length).toBeGreaterThanOrEqual(15);
    expect(documentedRoutes().sort()).toEqual(registered.sort());
  });

  it('serves the JSON at /api/docs-json and Swagger UI at /api/docs, without an API key', async () => {
    const json = await fetch(`${gw.base}/api/docs-json`);
    expect(json.status).toBe(200);
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await json.json()).toEqual(doc);

    const ui = await fetch(`${gw.base}/api/docs`);
    expect(ui.status).toBe(200);
    expect(ui.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await ui.text()).toContain('swagger-ui');
    // The page's own assets: the init script carries the document, the bundle comes from swagger-ui-dist.
    const init = await fetch(`${gw.base}/api/docs/swagger-ui-init.js`);
    expect(init.status).toBe(200);
    expect(await init.text()).toContain('"openapi": "3.1.0"');
    expect((await fetch(`${gw.base}/api/docs/swagger-ui-bundle.js`)).status).toBe(200);
  });

  it('answers with the statuses, error codes and body shapes the document gives', async () => {
    const cases: Case[] = [
      { method: 'get', template: '/api/v1/flow-runs', path: '/api/v1/flow-runs?projectId=proj_a&status=FAILED&status=TIMEOUT', status: 200 },
      { method: 'get', template: '/api/v1/flow-runs', path: '/api/v1/flow-runs?projectId=proj_a&limit=0', status: 400 },
      { method: 'get', template: '/api/v1/flow-runs', path: '/api/v1/flow-runs?projectId=proj_b', status: 404 },
      { method: 'get', template: '/api/v1/flow-runs', path: '/api/v1/flow-runs?projectId=proj_a', key: null, status: 401 },
      { method: 'get', template: '/api/v1/me', path: '/api/v1/me', status: 200 },
      { method: 'get', template: '/api/v1/me', path: '/api/v1/me', key: null, status: 401 },
      {
        method: 'get',
        template: '/api/v1/flow-runs/{id}',
        path: '/api/v1/flow-runs/run_missing',
        reply: { status: 404, json: { statusCode: 404, code: 'ENTITY_NOT_FOUND', params: { entityType: 'flow_run' } } },
        status: 404,
      },
      {
        method: 'post',
        template: '/api/v1/flow-runs/{id}/retry',
        path: '/api/v1/flow-runs/run_1/retry',
        body: { strategy: 'ON_LATEST_VERSION', projectId: 'proj_a' },
        reply: { status: 200, json: { ...EXAMPLE_RUN, id: 'run_2', projectId: 'proj_a', retryOf: 'run_1' } },
        status: 201,
      },
      {
        method: 'post',
        template: '/api/v1/flow-runs/{id}/retry',
        path: '/api/v1/flow-runs/run_1/retry',
        body: { strategy: 'FROM_FAILED_STEP', projectId: 'proj_a' },
        reply: { status: 409, json: { statusCode: 409, code: 'INVALID_TRANSITION', params: { status: 'RUNNING' } } },
        status: 409,
      },
      {
        method: 'post',
        template: '/api/v1/flow-runs/cancel',
        path: '/api/v1/flow-runs/cancel',
        body: {},
        reply: { status: 200, json: { action: 'cancel', changed: 2, examined: 3 } },
        status: 200,
      },
      {
        method: 'post',
        template: '/api/v1/flow-runs/retry',
        path: '/api/v1/flow-runs/retry',
        body: { strategy: 'FROM_FAILED_STEP', status: ['FAILED'] },
        reply: { status: 200, json: { action: 'retry', changed: 1, examined: 1 } },
        status: 200,
      },
      { method: 'post', template: '/api/v1/flow-runs/archive', path: '/api/v1/flow-runs/archive', body: { flowID: 'flow_1' }, status: 400 },
      {
        method: 'post',
        template: '/api/v1/flow-runs/{id}/requests/{requestId}/sync',
        path: '/api/v1/flow-runs/run_1/requests/req_1/sync',
        key: null,
        body: { approved: true },
        reply: { status: 200, json: { runId: 'run_1', stepName: 'approve', output: { approved: true } } },
        status: 200,
      },
      {
        method: 'post',
        template: '/api/v1/flow-runs/{id}/requests/{requestId}',
        path: '/api/v1/flow-runs/run_1/requests/req_1',
        key: null,
        reply: { status: 410, json: { statusCode: 410, code: 'PAUSE_EXPIRED', params: {} } },
        status: 410,
      },
      {
        method: 'get',
        template: '/api/v1/flows',
        path: '/api/v1/flows?projectId=proj_a',
        reply: { status: 200, json: { data: [EXAMPLE_FLOW] } },
        status: 200,
      },
      {
        method: 'post',
        template: '/api/v1/flows/{flowId}/run',
        path: '/api/v1/flows/flow_1/run',
        body: { customer: 7 },
        reply: { status: 201, json: { ...EXAMPLE_RUN, projectId: 'proj_a' } },
        status: 201,
      },
      {
        method: 'post',
        template: '/api/v1/flows/{flowId}/run',
        path: '/api/v1/flows/flow_1/run',
        headers: { 'ap-fail-parent-on-failure': 'maybe' },
        status: 400,
      },
      {
        method: 'post',
        template: '/api/v1/flows',
        path: '/api/v1/flows',
        body: { projectId: 'proj_a', displayName: 'Onboarding', steps: [] },
        headers: { 'Idempotency-Key': 'create-onboarding' },
        reply: { status: 201, json: { ...EXAMPLE_FLOW, projectId: 'proj_a' } },
        status: 201,
      },
      {
        method: 'post',
        template: '/api/v1/flows',
        path: '/api/v1/flows',
        body: { projectId: 'proj_a', displayName: 'Something else', steps: [] },
        headers: { 'Idempotency-Key': 'create-onboarding' },
        status: 422,
      },
    ];
    for (const c of cases) {
      gw.fake.reply = () => c.reply ?? { status: 500, json: { unexpected: true } };
      const answer = await gw.call(c.method.toUpperCase(), c.path, { key: c.key === null ? null : key, body: c.body, headers: c.headers });
      expect({ path: c.path, status: answer.status, body: answer.body }).toMatchObject({ status: c.status });
      expectDocumented(c.method, c.template, answer);
    }
  });
});
