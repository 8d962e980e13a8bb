import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MikroORM } from '@mikro-orm/postgresql';
import { ApiKeyStore, generateApiKey } from '@flowruns/access';
import { CreateFlowSchema, TriggerRunRequestSchema } from '@flowruns/contracts';
import { ormOptions, sqlRunner } from '@flowruns/database';
import { ExecutionDataStore } from '@flowruns/execution-data';
import { createTestDatabase, testEnv, waitFor } from '@flowruns/testing';
import { loadGatewayConfig } from './config';
import { configureGateway } from './configure';
import { gatewayRootModule } from './gateway.module';

/**
 * The gateway in-process over HTTP, against a real Postgres (fresh migrated database, real API
 * keys) and the real Kafka broker for readiness. The command service is outside the gateway's
 * boundary and is played by a local HTTP server that records what it receives.
 */

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

type Reply = { status: number; json?: unknown; text?: string } | 'hang' | 'destroy';

class FakeCommandService {
  readonly received: Received[] = [];
  reply: (r: Received) => Reply = () => ({ status: 201, json: { ok: true } });
  private readonly hanging: ServerResponse[] = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString();
        if (req.url === '/health/live') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
        const r: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: raw ? JSON.parse(raw) : undefined };
        this.received.push(r);
        const reply = this.reply(r);
        if (reply === 'hang') return void this.hanging.push(res);
        if (reply === 'destroy') return void req.socket.destroy();
        if (reply.text !== undefined) return void res.writeHead(reply.status, { 'content-type': 'text/html' }).end(reply.text);
        res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.json));
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }
}

const INTERNAL_TOKEN = 'test-internal-token-0123456789';

describe('api-gateway over HTTP', () => {
  let db: { url: string; drop: () => Promise<void> };
  let orm: MikroORM;
  let app: INestApplication;
  let base: string;
  const fake = new FakeCommandService();
  const keys: Record<'a' | 'b' | 'revoked' | 'cached', string> = { a: '', b: '', revoked: '', cached: '' };

  const call = async (
    method: string,
    path: string,
    opts: { key?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
  ) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.key !== null) headers.authorization ??= `Bearer ${opts.key ?? keys.a}`;
    let body: string | undefined = opts.raw;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    if (opts.raw !== undefined) headers['content-type'] ??= 'application/json';
    const res = await fetch(`${base}${path}`, { method, headers, body });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined, text };
  };

  beforeAll(async () => {
    process.env.LOG_LEVEL ??= 'silent';
    db = await createTestDatabase('gateway');
    orm = await MikroORM.init(ormOptions({ url: db.url, entities: [], poolMax: 2 }));
    const store = new ApiKeyStore(sqlRunner(orm.em.fork()));
    keys.a = (await store.create('proj_a', 'key_a')).key;
    keys.b = (await store.create('proj_b', 'key_b')).key;
    keys.cached = (await store.create('proj_a', 'key_cached')).key;
    keys.revoked = (await store.create('proj_a', 'key_revoked')).key;
    await store.revoke('key_revoked');

    await orm.em.fork().transactional(async (em) => {
      const data = new ExecutionDataStore(sqlRunner(em));
      const triggerRef = await data.put({ runId: 'run_a1', kind: 'trigger', stepName: null, attempt: null, input: undefined, output: { hello: 'world' }, error: undefined });
      const stepRef = await data.put({ runId: 'run_a1', kind: 'step', stepName: 'send_email', attempt: 1, input: { to: 'x@y.z' }, output: { sent: true }, error: undefined });
      const run = (id: string, project: string, created: string, status: string, triggerDataRef: string | null) =>
        em.execute(
          `insert into run_views (id, project_id, flow_id, flow_version_id, flow_display_name, status, environment,
             triggered_by, tags, steps_count, attempt, start_time, finish_time, created, version, logs_file_id, trigger_data_ref)
           values (?, ?, 'flow_xyz', 'ver_1', 'Customer Onboarding', ?, 'PRODUCTION', 'key_a', '{onboarding,customer}', 1, 1,
             ?::timestamptz, null, ?::timestamptz, 3, 'file_logs_123', ?)`,
          [id, project, status, created, created, triggerDataRef],
        );
      await run('run_a1', 'proj_a', '2024-01-15T10:30:00.000001Z', 'SUCCEEDED', triggerRef);
      await run('run_a2', 'proj_a', '2024-01-15T10:30:00.000001Z', 'FAILED', null);
      await run('run_a3', 'proj_a', '2024-01-15T10:30:00.000002Z', 'RUNNING', null);
      await run('run_b1', 'proj_b', '2024-01-15T10:30:00.000001Z', 'SUCCEEDED', null);
      await em.execute(
        `insert into step_views (run_id, step_name, step_type, status, attempt, position, duration_ms, data_ref)
         values ('run_a1', 'send_email', 'ACTION', 'SUCCEEDED', 1, 0, 1200, ?)`,
        [stepRef],
      );
    });

    await fake.start();
    const config = loadGatewayConfig({
      DATABASE_URL: db.url,
      DATABASE_POOL_MAX: '4',
      KAFKA_BROKERS: testEnv().kafkaBrokers.join(','),
      COMMAND_SERVICE_URL: fake.url,
      INTERNAL_API_TOKEN: INTERNAL_TOKEN,
      COMMAND_SERVICE_TIMEOUT_MS: '1000',
      GATEWAY_BODY_LIMIT: '1mb',
    });
    app = await NestFactory.create(gatewayRootModule(config), { bodyParser: false, logger: false });
    configureGateway(app, config);
    await app.listen(0, '127.0.0.1');
    base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  });

  afterAll(async () => {
    await app?.close();
    await fake.close();
    await orm?.close(true);
    await db?.drop();
  });

  beforeEach(() => {
    fake.received.length = 0;
    fake.reply = () => ({ status: 201, json: { ok: true } });
  });

  describe('authentication', () => {
    it.each([
      ['no Authorization header', null, undefined],
      ['another scheme', undefined, { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }],
      ['a malformed key', 'sk-short', undefined],
      ['a well-formed unknown key', generateApiKey().key, undefined],
      ['a revoked key', 'REVOKED', undefined],
    ])('answers 401 for %s', async (_what, key, headers) => {
      const res = await call('GET', '/api/v1/flow-runs?projectId=proj_a', {
        key: key === 'REVOKED' ? keys.revoked : key,
        headers: headers as Record<string, string> | undefined,
      });
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ statusCode: 401, code: 'UNAUTHORIZED', params: { message: expect.any(String) } });
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
    });

    it('trusts a verified key for the cache TTL (a revocation takes up to AUTH_CACHE_TTL_MS)', async () => {
      expect((await call('GET', '/api/v1/flow-runs?projectId=proj_a', { key: keys.cached })).status).toBe(200);
      await new ApiKeyStore(sqlRunner(orm.em.fork())).revoke('key_cached');
      expect((await call('GET', '/api/v1/flow-runs?projectId=proj_a', { key: keys.cached })).status).toBe(200);
    });
  });

  describe('GET /api/v1/flow-runs', () => {
    it.each([
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=ten', 'limit'],
      ['cursor=not-a-cursor', 'cursor'],
      ['cursor=%%%not-a-cursor', 'cursor'],
      [`cursor=${Buffer.from('{"t":"2024-02-30T00:00:00.000000Z","i":"x","d":"n"}').toString('base64url')}`, 'cursor'],
      ['createdAfter=yesterday', 'createdAfter'],
      ['createdBefore=2024-01-15', 'createdBefore'],
      ['status=DONE', 'status'],
      ['status[]=FAILED&status[]=NOPE', 'status'],
      ['includeArchived=yes', 'includeArchived'],
      ['limit=5&limit=6', 'limit'],
    ])('answers 400 naming the field for %s', async (query, field) => {
      const res = await call('GET', `/api/v1/flow-runs?projectId=proj_a&${query}`);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ statusCode: 400, code: 'VALIDATION', params: { field, message: expect.any(String) } });
    });

    it('requires projectId', async () => {
      const res = await call('GET', '/api/v1/flow-runs');
      expect(res.status).toBe(400);
      expect(res.body.params.field).toBe('projectId');
    });

    it('answers 404 for a project that is not the key’s', async () => {
      const res = await call('GET', '/api/v1/flow-runs?projectId=proj_b');
      expect(res.status).toBe(404);
      expect(res.body).toEqual({
        statusCode: 404,
        code: 'ENTITY_NOT_FOUND',
        params: { entityType: 'project', entityId: 'proj_b', message: 'Project not found' },
      });
    });

    it('lists the project’s runs newest first, with working cursors', async () => {
      const first = await call('GET', '/api/v1/flow-runs?projectId=proj_a&limit=2');
      expect(first.status).toBe(200);
      expect(first.body.data.map((r: { id: string }) => r.id)).toEqual(['run_a3', 'run_a2']);
      expect(first.body.previous).toBeNull();
      expect(first.body.data[0]).toMatchObject({
        projectId: 'proj_a',
        flowVersion: { displayName: 'Customer Onboarding' },
        tags: ['onboarding', 'customer'],
        created: '2024-01-15T10:30:00.000Z',
      });
      expect(first.body.data[0]).not.toHaveProperty('steps');
      const second = await call('GET', `/api/v1/flow-runs?projectId=proj_a&limit=2&cursor=${first.body.next}`);
      expect(second.body.data.map((r: { id: string }) => r.id)).toEqual(['run_a1']);
      expect(second.body.next).toBeNull();
      const back = await call('GET', `/api/v1/flow-runs?projectId=proj_a&limit=2&cursor=${second.body.previous}`);
      expect(back.body).toEqual(first.body);
    });

    it('accepts repeated parameters written either way', async () => {
      const plain = await call('GET', '/api/v1/flow-runs?projectId=proj_a&status=FAILED&status=RUNNING');
      const brackets = await call('GET', '/api/v1/flow-runs?projectId=proj_a&status[]=FAILED&status[]=RUNNING');
      const encoded = await call('GET', '/api/v1/flow-runs?projectId=proj_a&status%5B%5D=FAILED&status%5B%5D=RUNNING');
      expect(plain.body.data.map((r: { id: string }) => r.id)).toEqual(['run_a3', 'run_a2']);
      expect(brackets.body).toEqual(plain.body);
      expect(encoded.body).toEqual(plain.body);
      const tagged = await call('GET', '/api/v1/flow-runs?projectId=proj_a&tags=onboarding&tags[]=customer&flowRunIds=run_a1');
      expect(tagged.body.data.map((r: { id: string }) => r.id)).toEqual(['run_a1']);
    });
  });

  describe('GET /api/v1/flow-runs/:id', () => {
    it('answers the run with its steps', async () => {
      const res = await call('GET', '/api/v1/flow-runs/run_a1');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        id: 'run_a1',
        projectId: 'proj_a',
        status: 'SUCCEEDED',
        logsFileId: 'file_logs_123',
        steps: {
          trigger: { type: 'TRIGGER', output: { hello: 'world' } },
          send_email: { type: 'ACTION', status: 'SUCCEEDED', input: { to: 'x@y.z' }, output: { sent: true }, duration: 1200, attempt: 1 },
        },
      });
    });

    it('answers the reference 404 for an unknown run', async () => {
      const res = await call('GET', '/api/v1/flow-runs/run_abc123');
      expect(res.status).toBe(404);
      expect(res.body).toEqual({
        statusCode: 404,
        code: 'ENTITY_NOT_FOUND',
        params: { entityType: 'flow_run', entityId: 'run_abc123', message: 'Flow run not found' },
      });
    });

    it('answers another project’s run exactly like an unknown one', async () => {
      const res = await call('GET', '/api/v1/flow-runs/run_b1');
      expect(res.status).toBe(404);
      expect(res.body).toEqual({
        statusCode: 404,
        code: 'ENTITY_NOT_FOUND',
        params: { entityType: 'flow_run', entityId: 'run_b1', message: 'Flow run not found' },
      });
      expect((await call('GET', '/api/v1/flow-runs/run_b1', { key: keys.b })).status).toBe(200);
    });

    it('answers 404 project for a projectId that is not the key’s', async () => {
      expect((await call('GET', '/api/v1/flow-runs/run_a1?projectId=proj_a')).status).toBe(200);
      const res = await call('GET', '/api/v1/flow-runs/run_a1?projectId=proj_b');
      expect(res.status).toBe(404);
      expect(res.body.params).toMatchObject({ entityType: 'project', entityId: 'proj_b' });
    });
  });

  describe('request bodies and routes', () => {
    it('answers 413 in the envelope for a body over GATEWAY_BODY_LIMIT', async () => {
      const res = await call('POST', '/api/v1/flows', {
        body: { projectId: 'proj_a', displayName: 'x', steps: [], blob: 'x'.repeat(1024 * 1024 + 10) },
      });
      expect(res.status).toBe(413);
      expect(res.body).toEqual({ statusCode: 413, code: 'PAYLOAD_TOO_LARGE', params: { field: 'body', message: expect.any(String) } });
      expect(fake.received).toHaveLength(0);
    });

    it('answers 400 VALIDATION for malformed JSON', async () => {
      const res = await call('POST', '/api/v1/flows', { raw: '{"projectId": "proj_a",' });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ statusCode: 400, code: 'VALIDATION', params: { field: 'body' } });
    });

    it.each([
      ['GET', '/api/v1/nope'],
      ['DELETE', '/api/v1/flow-runs'],
      ['GET', '/'],
    ])('answers an envelope 404 for the unknown route %s %s', async (method, path) => {
      const res = await call(method, path, { key: null });
      expect(res.status).toBe(404);
      expect(res.body).toEqual({
        statusCode: 404,
        code: 'ENTITY_NOT_FOUND',
        params: { entityType: 'route', entityId: `${method} ${path}`, message: 'Route not found' },
      });
    });
  });

  it('answers 400 in the envelope for a path that is not valid percent-encoding', async () => {
    const res = await call('GET', '/api/v1/flow-runs/%E0%A4%A');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ statusCode: 400, code: 'VALIDATION' });
  });

  describe('POST /api/v1/flows', () => {
    const flow = { projectId: 'proj_a', displayName: 'Onboarding', steps: [{ name: 'send_email', type: 'http' }] };

    it('forwards the validated body with the internal token and a traceparent, and answers 201', async () => {
      const answer = { id: 'flow_1', projectId: 'proj_a', displayName: 'Onboarding' };
      fake.reply = () => ({ status: 201, json: answer });
      const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      const res = await call('POST', '/api/v1/flows', { body: { ...flow, extra: 'dropped' }, headers: { traceparent: incoming } });
      expect(res.status).toBe(201);
      expect(res.body).toEqual(answer);
      expect(fake.received).toHaveLength(1);
      const got = fake.received[0];
      expect(got.method).toBe('POST');
      expect(got.url).toBe('/internal/flows');
      expect(got.headers['x-internal-token']).toBe(INTERNAL_TOKEN);
      expect(got.headers.authorization).toBeUndefined();
      expect(got.body).toEqual({ ...flow, tags: [], steps: [{ name: 'send_email', type: 'http', settings: {} }] });
      expect(CreateFlowSchema.strict().parse(got.body)).toEqual(got.body);
      // Same trace, the gateway's own span as the parent.
      expect(got.headers.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
      expect(got.headers.traceparent).not.toBe(incoming);
    });

    it('starts a trace when the caller sent none', async () => {
      await call('POST', '/api/v1/flows', { body: flow });
      expect(fake.received[0].headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    });

    it('answers 400 naming the field and 404 for another project, without calling the command service', async () => {
      const bad = await call('POST', '/api/v1/flows', { body: { projectId: 'proj_a', steps: [] } });
      expect(bad.status).toBe(400);
      expect(bad.body).toMatchObject({ code: 'VALIDATION', params: { field: 'displayName' } });
      const foreign = await call('POST', '/api/v1/flows', { body: { ...flow, projectId: 'proj_b' } });
      expect(foreign.status).toBe(404);
      expect(foreign.body.params).toMatchObject({ entityType: 'project', entityId: 'proj_b' });
      expect(fake.received).toHaveLength(0);
    });

    it('passes the command service’s error envelopes through with their status', async () => {
      const envelope = {
        statusCode: 400,
        code: 'FLOW_DEFINITION_INVALID',
        params: { field: 'steps[0].type', stepName: 'send_email', message: 'unknown step type' },
      };
      fake.reply = () => ({ status: 400, json: envelope });
      const res = await call('POST', '/api/v1/flows', { body: flow });
      expect(res.status).toBe(400);
      expect(res.body).toEqual(envelope);
    });
  });

  describe('POST /api/v1/flows/:flowId/run', () => {
    const run = { id: 'run_new', projectId: 'proj_a', flowId: 'flow_xyz', status: 'RUNNING' };

    it('forwards the payload, nested-run headers and the key as triggeredBy, and answers the run with 201', async () => {
      fake.reply = () => ({ status: 201, json: run });
      const res = await call('POST', '/api/v1/flows/flow_xyz/run', {
        body: { order: 42, items: ['a'] },
        headers: { 'ap-parent-run-id': 'run_parent123', 'ap-fail-parent-on-failure': 'true' },
      });
      expect(res.status).toBe(201);
      expect(res.body).toEqual(run);
      const got = fake.received[0];
      expect(got.url).toBe('/internal/flows/flow_xyz/runs');
      expect(got.headers['x-internal-token']).toBe(INTERNAL_TOKEN);
      expect(got.body).toEqual({
        projectId: 'proj_a',
        payload: { order: 42, items: ['a'] },
        parentRunId: 'run_parent123',
        failParentOnFailure: true,
        triggeredBy: 'key_a',
      });
      // What the command service's own schema accepts (it defaults the environment).
      expect(TriggerRunRequestSchema.strict().parse(got.body)).toMatchObject({ ...(got.body as object), environment: 'PRODUCTION' });
    });

    it('takes any JSON value as the payload, and no body as {}', async () => {
      await call('POST', '/api/v1/flows/flow_xyz/run', { raw: '"just a string"' });
      await call('POST', '/api/v1/flows/flow_xyz/run', {});
      expect(fake.received.map((r) => (r.body as { payload: unknown }).payload)).toEqual(['just a string', {}]);
      expect(fake.received[1].body).toMatchObject({ parentRunId: null, failParentOnFailure: false });
    });

    it('escapes the flow id in the forwarded path', async () => {
      await call('POST', `/api/v1/flows/${encodeURIComponent('a/b?c')}/run`, { body: {} });
      expect(fake.received[0].url).toBe('/internal/flows/a%2Fb%3Fc/runs');
    });

    it('answers 400 for a bad ap-fail-parent-on-failure', async () => {
      const res = await call('POST', '/api/v1/flows/flow_xyz/run', { body: {}, headers: { 'ap-fail-parent-on-failure': 'yes' } });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'VALIDATION', params: { field: 'ap-fail-parent-on-failure' } });
      expect(fake.received).toHaveLength(0);
    });

    it.each([
      [404, { statusCode: 404, code: 'ENTITY_NOT_FOUND', params: { entityType: 'flow', entityId: 'flow_xyz', message: 'Flow not found' } }],
      [409, { statusCode: 409, code: 'INVALID_TRANSITION', params: { from: 'SUCCEEDED', command: 'Cancel' } }],
      [500, { statusCode: 500, code: 'INTERNAL_ERROR', params: { message: 'internal error' } }],
    ])('passes a %i envelope through', async (status, envelope) => {
      fake.reply = () => ({ status, json: envelope });
      const res = await call('POST', '/api/v1/flows/flow_xyz/run', { body: {} });
      expect(res.status).toBe(status);
      expect(res.body).toEqual(envelope);
    });

    const unavailable = { statusCode: 503, code: 'SERVICE_UNAVAILABLE', params: { message: 'command service unavailable' } };

    it('answers 503 when the command service drops the connection', async () => {
      fake.reply = () => 'destroy';
      const res = await call('POST', '/api/v1/flows/flow_xyz/run', { body: {} });
      expect(res.status).toBe(503);
      expect(res.body).toEqual(unavailable);
    });

    it('answers 503 when the command service does not answer within COMMAND_SERVICE_TIMEOUT_MS', async () => {
      fake.reply = () => 'hang';
      const started = Date.now();
      const res = await call('POST', '/api/v1/flows/flow_xyz/run', { body: {} });
      expect(res.status).toBe(503);
      expect(res.body).toEqual(unavailable);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    });

    it.each([
      ['refuses the internal token (not the client’s fault)', { status: 401, json: { statusCode: 401, code: 'UNAUTHORIZED', params: {} } }],
      ['answers something that is not an envelope', { status: 502, text: '<html>bad gateway</html>' }],
    ])('answers 503 when the command service %s', async (_what, reply) => {
      fake.reply = () => reply;
      const res = await call('POST', '/api/v1/flows/flow_xyz/run', { body: {} });
      expect(res.status).toBe(503);
      expect(res.body).toEqual(unavailable);
    });
  });

  describe('operations', () => {
    it('is live, and ready when Postgres, Kafka and the command service answer', async () => {
      expect((await call('GET', '/health/live', { key: null })).status).toBe(200);
      // The Kafka admin connects in the background after start.
      const ready = await waitFor(
        async () => {
          const r = await call('GET', '/health/ready', { key: null });
          if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
          return r;
        },
        { what: 'gateway readiness', timeoutMs: 30_000, intervalMs: 200 },
      );
      expect(ready.body.info).toMatchObject({
        postgres: { status: 'up' },
        kafka: { status: 'up' },
        'command-service': { status: 'up' },
      });
    });

    it('exports request durations by route template and status', async () => {
      await call('GET', '/api/v1/flow-runs/run_a1');
      await call('GET', '/api/v1/flow-runs/definitely-missing');
      const metrics = await fetch(`${base}/metrics`).then((r) => r.text());
      expect(metrics).toMatch(/flowruns_gateway_http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/flow-runs\/:id",status="200"\} \d+/);
      expect(metrics).toMatch(/flowruns_gateway_http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/flow-runs\/:id",status="404"\} \d+/);
      expect(metrics).not.toContain('definitely-missing');
    });
  });
});
