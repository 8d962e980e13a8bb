import type { MikroORM } from '@mikro-orm/postgresql';
import { ApiKeyStore, generateApiKey } from '@flowruns/access';
import {
  BulkRunRequestSchema,
  CreateFlowSchema,
  EraseRunRequestSchema,
  PublishFlowVersionSchema,
  ResumeRunRequestSchema,
  RetryRunRequestSchema,
  TriggerRunRequestSchema,
} from '@flowruns/contracts';
import { sqlRunner } from '@flowruns/database';
import { ExecutionDataStore } from '@flowruns/execution-data';
import { waitFor } from '@flowruns/testing';
import { startTestGateway, type FakeCommandService, type Received, type Reply, type TestGateway } from './gateway.spec-helpers';

/**
 * The gateway in-process over HTTP, against a real Postgres (fresh migrated database, real API
 * keys) and the real Kafka broker for readiness. The command service is outside the gateway's
 * boundary and is played by a local HTTP server that records what it receives.
 */

const INTERNAL_TOKEN = 'test-internal-token-0123456789';

describe('api-gateway over HTTP', () => {
  let gateway: TestGateway;
  let orm: MikroORM;
  let base: string;
  let fake: FakeCommandService;
  const keys: Record<'a' | 'b' | 'c' | 'revoked' | 'cached', string> = { a: '', b: '', c: '', revoked: '', cached: '' };

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
    const json = text && !res.headers.get('content-type')?.includes('ndjson');
    return { status: res.status, headers: res.headers, body: json ? JSON.parse(text) : undefined, text };
  };

  beforeAll(async () => {
    gateway = await startTestGateway({
      INTERNAL_API_TOKEN: INTERNAL_TOKEN,
      COMMAND_SERVICE_TIMEOUT_MS: '1000',
      GATEWAY_BODY_LIMIT: '1mb',
      GATEWAY_BULK_TIMEOUT_MS: '1500',
      GATEWAY_READ_WAIT_MS: '2000',
      // Small, so that an export of project A's three runs takes two pages.
      GATEWAY_EXPORT_PAGE_SIZE: '2',
    });
    ({ orm, base, fake } = gateway);
    const store = new ApiKeyStore(sqlRunner(orm.em.fork()));
    keys.a = (await store.create('proj_a', 'key_a')).key;
    keys.b = (await store.create('proj_b', 'key_b')).key;
    keys.c = (await store.create('proj_c', 'key_c')).key;
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
  });

  afterAll(async () => {
    await gateway?.close();
  });

  beforeEach(() => {
    fake.received.length = 0;
    fake.reply = () => ({ status: 201, json: { ok: true } });
    fake.inFlight = 0;
    fake.maxInFlight = 0;
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
    const notFound = (r: Received): Reply => ({
      status: 404,
      json: { statusCode: 404, code: 'ENTITY_NOT_FOUND', params: { entityType: 'flow_run', entityId: r.url.split('/')[3] } },
    });
    beforeEach(() => {
      fake.reply = notFound;
    });

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
      // The write model was asked, in the key's project, whether the run exists but is not projected yet.
      expect(fake.received.map((r) => r.url)).toEqual(['/internal/runs/run_abc123/head?projectId=proj_a']);
    });

    it('read-your-writes: waits for a run the write model has and the views do not hold yet', async () => {
      fake.reply = () => ({ status: 200, json: { runId: 'run_late', version: 1, status: 'RUNNING' } });
      const pending = call('GET', '/api/v1/flow-runs/run_late', { key: keys.c });
      await waitFor(() => fake.received.length > 0, { timeoutMs: 5000, what: 'the head request' });
      await orm.em.fork().execute(
        `insert into run_views (id, project_id, flow_id, flow_version_id, flow_display_name, status, environment,
           triggered_by, tags, steps_count, attempt, start_time, created, version)
         values ('run_late', 'proj_c', 'flow_xyz', 'ver_1', 'Late', 'RUNNING', 'PRODUCTION', 'key_a', '{}', 1, 1, now(), now(), 1)`,
      );
      const res = await pending;
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: 'run_late', status: 'RUNNING' });
    });

    it('read-your-writes: past GATEWAY_READ_WAIT_MS answers 503 with Retry-After, not 404', async () => {
      fake.reply = () => ({ status: 200, json: { runId: 'run_never', version: 1, status: 'RUNNING' } });
      const res = await call('GET', '/api/v1/flow-runs/run_never');
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(res.body).toMatchObject({ statusCode: 503, code: 'SERVICE_UNAVAILABLE', params: { entityType: 'flow_run', entityId: 'run_never' } });
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

  describe('GET /api/v1/flow-runs/export (NDJSON)', () => {
    const validation = (field: string) => ({ statusCode: 400, code: 'VALIDATION', params: expect.objectContaining({ field }) });
    const lines = (text: string) => text.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as { id: string });

    it('streams every selected run with its steps, one per line, newest first, across pages; each line is what GET answers', async () => {
      const res = await call('GET', '/api/v1/flow-runs/export?projectId=proj_a');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('application/x-ndjson');
      expect(res.text.endsWith('\n')).toBe(true);
      const runs = lines(res.text);
      expect(runs.map((r) => r.id)).toEqual(['run_a3', 'run_a2', 'run_a1']);
      for (const run of runs) expect(run).toEqual((await call('GET', `/api/v1/flow-runs/${run.id}`)).body);
      expect(runs[2]).toMatchObject({ steps: { send_email: { output: { sent: true } } } });
    });

    it('takes the list’s filters; another project’s runs never appear', async () => {
      const res = await call('GET', '/api/v1/flow-runs/export?projectId=proj_a&status=SUCCEEDED&status=FAILED&tags=onboarding');
      expect(lines(res.text).map((r) => r.id)).toEqual(['run_a2', 'run_a1']);
      const none = await call('GET', '/api/v1/flow-runs/export?projectId=proj_a&flowId=flow_none');
      expect({ status: none.status, text: none.text }).toEqual({ status: 200, text: '' });
    });

    it('answers 400 naming a bad filter, 400 without projectId, 404 for another project', async () => {
      expect((await call('GET', '/api/v1/flow-runs/export?projectId=proj_a&status=BROKEN')).body).toEqual(validation('status'));
      expect((await call('GET', '/api/v1/flow-runs/export')).body).toEqual(validation('projectId'));
      const foreign = await call('GET', '/api/v1/flow-runs/export?projectId=proj_b');
      expect(foreign.status).toBe(404);
      expect(foreign.body.params).toMatchObject({ entityType: 'project', entityId: 'proj_b' });
      expect((await call('GET', '/api/v1/flow-runs/export?projectId=proj_a', { key: null })).status).toBe(401);
    });
  });

  describe('POST /api/v1/flow-runs/:id/erase', () => {
    it('forwards the key’s project and answers what went', async () => {
      fake.reply = () => ({ status: 200, json: { runId: 'run_a1', version: 5, status: 'SUCCEEDED', eventsAppended: 1, runs: 1, records: 2, bytes: 40 } });
      const res = await call('POST', '/api/v1/flow-runs/run_a1/erase');
      expect(res).toMatchObject({ status: 200, body: { runId: 'run_a1', erased: true, records: 2, bytes: 40 } });
      expect(fake.received).toHaveLength(1);
      expect(fake.received[0]).toMatchObject({ method: 'POST', url: '/internal/runs/run_a1/erase', body: { projectId: 'proj_a' } });
      expect(EraseRunRequestSchema.strict().parse(fake.received[0].body)).toEqual({ projectId: 'proj_a' });
    });

    it('passes a refusal through (409 while the run runs) and answers 404 for another project’s projectId without a call', async () => {
      fake.reply = () => ({ status: 409, json: { statusCode: 409, code: 'INVALID_TRANSITION', params: { status: 'RUNNING' } } });
      expect(await call('POST', '/api/v1/flow-runs/run_a3/erase')).toMatchObject({ status: 409, body: { code: 'INVALID_TRANSITION', params: { status: 'RUNNING' } } });
      fake.received.length = 0;
      expect((await call('POST', '/api/v1/flow-runs/run_a1/erase?projectId=proj_b')).status).toBe(404);
      expect(fake.received).toHaveLength(0);
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

    it('sends triggers made at once together, each client getting its own answer (a refusal too)', async () => {
      fake.triggerBatches = 0;
      // A command service that takes 30 ms per call: triggers arriving meanwhile must wait and go together.
      fake.reply = async (r) => {
        await new Promise((resolve) => setTimeout(resolve, 30));
        return r.url.includes('flow_missing')
          ? { status: 404, json: { code: 'ENTITY_NOT_FOUND', params: { entityType: 'flow', entityId: 'flow_missing' } } }
          : { status: 201, json: { ...run, id: `run_${String((r.body as { payload: { n: number } }).payload.n)}` } };
      };
      const answers = await Promise.all(
        Array.from({ length: 12 }, (_, n) => call('POST', `/api/v1/flows/${n === 5 ? 'flow_missing' : 'flow_xyz'}/run`, { body: { n } })),
      );
      expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 12 }, (_, n) => (n === 5 ? 404 : 201)));
      answers.forEach((a, n) => {
        if (n === 5) expect(a.body).toEqual({ statusCode: 404, code: 'ENTITY_NOT_FOUND', params: { entityType: 'flow', entityId: 'flow_missing' } });
        else expect(a.body).toMatchObject({ id: `run_${n}` });
      });
      expect(fake.received).toHaveLength(12);
      // Each trigger kept its own request's trace.
      expect(new Set(fake.received.map((r) => r.headers.traceparent)).size).toBe(12);
      expect(fake.triggerBatches).toBeLessThan(12);
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

  describe('run control and flows (forwarded to the command service)', () => {
    const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const withTrace = { traceparent: incoming };
    const notFound = (entityType: string, entityId: string, message: string) => ({
      statusCode: 404,
      code: 'ENTITY_NOT_FOUND',
      params: { entityType, entityId, message },
    });

    /** The internal call as the gateway must make it: method, path, token, no client credentials, the caller's trace. */
    function expectForwarded(got: Received | undefined, method: string, url: string): void {
      expect(got).toBeDefined();
      expect(got!.method).toBe(method);
      expect(got!.url).toBe(url);
      expect(got!.headers['x-internal-token']).toBe(INTERNAL_TOKEN);
      expect(got!.headers.authorization).toBeUndefined();
      expect(got!.headers.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
      expect(got!.headers.traceparent).not.toBe(incoming);
    }

    const validation = (field: string) => ({ statusCode: 400, code: 'VALIDATION', params: expect.objectContaining({ field }) });

    it.each([
      ['POST', '/api/v1/flows/flow_xyz/versions'],
      ['GET', '/api/v1/flows?projectId=proj_a'],
      ['GET', '/api/v1/flows/flow_xyz'],
      ['POST', '/api/v1/flow-runs/run_a2/retry'],
      ['POST', '/api/v1/flow-runs/cancel'],
    ])('answers 401 without an API key for %s %s, and calls nothing', async (method, path) => {
      const res = await call(method, path, { key: null, body: method === 'POST' ? {} : undefined });
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ statusCode: 401, code: 'UNAUTHORIZED' });
      expect(fake.received).toHaveLength(0);
    });

    describe('flows', () => {
      const owners: Record<string, string> = { flow_xyz: 'proj_a', flow_b: 'proj_b' };
      const flowOf = (id: string, projectId: string) => ({
        id,
        projectId,
        displayName: 'Onboarding',
        tags: [],
        created: '2024-01-15T10:30:00.000Z',
        updated: '2024-01-16T10:30:00.000Z',
        version: { id: 'ver_2', version: 2, displayName: 'Onboarding v2', steps: [] },
      });

      beforeEach(() => {
        // Plays the command service's scoping: a flow exists only in its own project.
        fake.reply = (r) => {
          const url = new URL(r.url, 'http://fake');
          const projectId = url.searchParams.get('projectId') ?? (r.body as { projectId?: string } | undefined)?.projectId;
          const m = /^\/internal\/flows(?:\/([^/]+))?(\/versions)?$/.exec(url.pathname);
          if (!m) return { status: 500, json: { statusCode: 500, code: 'INTERNAL_ERROR', params: {} } };
          if (!m[1]) return { status: 200, json: { data: Object.keys(owners).filter((f) => owners[f] === projectId).map((f) => flowOf(f, owners[f])) } };
          const id = decodeURIComponent(m[1]);
          if (owners[id] !== projectId) return { status: 404, json: notFound('flow', id, 'Flow not found') };
          return { status: m[2] ? 201 : 200, json: flowOf(id, owners[id]) };
        };
      });

      it('POST /flows/:flowId/versions forwards the steps with the key’s project and answers 201 with the flow', async () => {
        const res = await call('POST', '/api/v1/flows/flow_xyz/versions', {
          body: { displayName: 'Onboarding v2', steps: [{ name: 'approve', type: 'approval' }], extra: 'dropped' },
          headers: withTrace,
        });
        expect(res.status).toBe(201);
        expect(res.body).toEqual(flowOf('flow_xyz', 'proj_a'));
        expect(fake.received).toHaveLength(1);
        const got = fake.received[0];
        expectForwarded(got, 'POST', '/internal/flows/flow_xyz/versions');
        expect(got.headers['content-type']).toBe('application/json');
        expect(got.body).toEqual({ projectId: 'proj_a', displayName: 'Onboarding v2', steps: [{ name: 'approve', type: 'approval', settings: {} }] });
        expect(PublishFlowVersionSchema.strict().parse(got.body)).toEqual(got.body);
      });

      it('POST /flows/:flowId/versions takes the body’s projectId when it is the key’s, and displayName is optional', async () => {
        const res = await call('POST', '/api/v1/flows/flow_xyz/versions', { body: { projectId: 'proj_a', steps: [] } });
        expect(res.status).toBe(201);
        expect(fake.received[0].body).toEqual({ projectId: 'proj_a', steps: [] });
        expect(PublishFlowVersionSchema.strict().parse(fake.received[0].body)).toEqual(fake.received[0].body);
      });

      it.each([
        [{}, 'steps'],
        [{ steps: 'nope' }, 'steps'],
        [{ steps: [{ name: 'bad name', type: 'http' }] }, 'steps.0.name'],
        [{ steps: [{ name: 'trigger', type: 'http' }] }, 'steps.0.name'],
        [{ steps: [{ name: 'a' }] }, 'steps.0.type'],
        [{ steps: [], displayName: '' }, 'displayName'],
        [{ steps: [], projectId: '' }, 'projectId'],
      ])('POST /flows/:flowId/versions answers 400 for %j naming %s', async (body, field) => {
        const res = await call('POST', '/api/v1/flows/flow_xyz/versions', { body });
        expect(res.status).toBe(400);
        expect(res.body).toEqual(validation(field));
        expect(fake.received).toHaveLength(0);
      });

      it('POST /flows/:flowId/versions answers 404 for another project in the body, and another project’s flow like an unknown one', async () => {
        const foreignProject = await call('POST', '/api/v1/flows/flow_xyz/versions', { body: { projectId: 'proj_b', steps: [] } });
        expect(foreignProject.status).toBe(404);
        expect(foreignProject.body.params).toMatchObject({ entityType: 'project', entityId: 'proj_b' });
        expect(fake.received).toHaveLength(0);
        const foreign = await call('POST', '/api/v1/flows/flow_b/versions', { body: { steps: [] } });
        const unknown = await call('POST', '/api/v1/flows/flow_zzz/versions', { body: { steps: [] } });
        expect(foreign.status).toBe(404);
        expect(foreign.body).toEqual(notFound('flow', 'flow_b', 'Flow not found'));
        expect(unknown.body).toEqual(notFound('flow', 'flow_zzz', 'Flow not found'));
      });

      it('GET /flows forwards the project and answers its flows', async () => {
        const res = await call('GET', '/api/v1/flows?projectId=proj_a', { headers: withTrace });
        expect(res.status).toBe(200);
        expect(res.body).toEqual({ data: [flowOf('flow_xyz', 'proj_a')] });
        expectForwarded(fake.received[0], 'GET', '/internal/flows?projectId=proj_a');
        expect(fake.received[0].body).toBeUndefined();
        expect(fake.received[0].headers['content-type']).toBeUndefined();
      });

      it('GET /flows requires projectId and answers 404 for another project', async () => {
        const missing = await call('GET', '/api/v1/flows');
        expect(missing.status).toBe(400);
        expect(missing.body).toEqual({ statusCode: 400, code: 'VALIDATION', params: { field: 'projectId', message: expect.any(String) } });
        const twice = await call('GET', '/api/v1/flows?projectId=proj_a&projectId=proj_b');
        expect(twice.body.params.field).toBe('projectId');
        const foreign = await call('GET', '/api/v1/flows?projectId=proj_b');
        expect(foreign.status).toBe(404);
        expect(foreign.body.params).toMatchObject({ entityType: 'project', entityId: 'proj_b' });
        expect(fake.received).toHaveLength(0);
      });

      it('GET /flows/:flowId asks for the flow in the key’s project, so another project’s flow is a 404 like an unknown one', async () => {
        const mine = await call('GET', '/api/v1/flows/flow_xyz', { headers: withTrace });
        expect(mine.status).toBe(200);
        expect(mine.body).toEqual(flowOf('flow_xyz', 'proj_a'));
        expectForwarded(fake.received[0], 'GET', '/internal/flows/flow_xyz?projectId=proj_a');
        const foreign = await call('GET', '/api/v1/flows/flow_b');
        const unknown = await call('GET', '/api/v1/flows/flow_zzz');
        expect(foreign.status).toBe(404);
        expect(foreign.body).toEqual(notFound('flow', 'flow_b', 'Flow not found'));
        expect(unknown.body).toEqual(notFound('flow', 'flow_zzz', 'Flow not found'));
        expect((await call('GET', '/api/v1/flows/flow_b', { key: keys.b })).status).toBe(200);
      });

      it('GET /flows/:flowId escapes the id and checks an explicit projectId', async () => {
        fake.received.length = 0;
        await call('GET', `/api/v1/flows/${encodeURIComponent('a/b?c')}`);
        expect(fake.received[0].url).toBe('/internal/flows/a%2Fb%3Fc?projectId=proj_a');
        const foreign = await call('GET', '/api/v1/flows/flow_xyz?projectId=proj_b');
        expect(foreign.status).toBe(404);
        expect(foreign.body.params).toMatchObject({ entityType: 'project', entityId: 'proj_b' });
        expect(fake.received).toHaveLength(1);
      });
    });

    describe('POST /api/v1/flow-runs/:id/retry', () => {
      const runOf = (id: string, extra: object = {}) => ({ id, projectId: 'proj_a', flowId: 'flow_xyz', status: 'RUNNING', attempt: 2, ...extra });

      beforeEach(() => {
        fake.reply = (r) => {
          const id = decodeURIComponent(/^\/internal\/runs\/([^/]+)\/retry$/.exec(r.url)?.[1] ?? '');
          const { projectId, strategy } = r.body as { projectId: string; strategy: string };
          if (id === 'run_b1' && projectId !== 'proj_b') return { status: 404, json: notFound('flow_run', id, 'Flow run not found') };
          if (id === 'run_unknown') return { status: 404, json: notFound('flow_run', id, 'Flow run not found') };
          if (id === 'run_a1') return { status: 409, json: { statusCode: 409, code: 'INVALID_TRANSITION', params: { from: 'SUCCEEDED', command: 'RetryFlowRun' } } };
          if (id === 'run_purged') return { status: 410, json: { statusCode: 410, code: 'EXECUTION_DATA_PURGED', params: { runId: id } } };
          return strategy === 'ON_LATEST_VERSION'
            ? { status: 201, json: runOf('run_retry1', { retryOf: id, attempt: 1 }) }
            : { status: 200, json: runOf(id) };
        };
      });

      it('FROM_FAILED_STEP: forwards { projectId, strategy } and answers the same run with 200', async () => {
        const res = await call('POST', '/api/v1/flow-runs/run_a2/retry', {
          body: { strategy: 'FROM_FAILED_STEP', projectId: 'proj_a' },
          headers: withTrace,
        });
        expect(res.status).toBe(200);
        expect(res.body).toEqual(runOf('run_a2'));
        expect(res.headers.get('location')).toBeNull();
        expectForwarded(fake.received[0], 'POST', '/internal/runs/run_a2/retry');
        expect(fake.received[0].body).toEqual({ projectId: 'proj_a', strategy: 'FROM_FAILED_STEP' });
        expect(RetryRunRequestSchema.strict().parse(fake.received[0].body)).toEqual(fake.received[0].body);
      });

      it('ON_LATEST_VERSION: answers the new run with 201 and its Location', async () => {
        const res = await call('POST', '/api/v1/flow-runs/run_a2/retry', { body: { strategy: 'ON_LATEST_VERSION', projectId: 'proj_a' } });
        expect(res.status).toBe(201);
        expect(res.body).toEqual(runOf('run_retry1', { retryOf: 'run_a2', attempt: 1 }));
        expect(res.headers.get('location')).toBe('/api/v1/flow-runs/run_retry1');
        expect(RetryRunRequestSchema.strict().parse(fake.received[0].body)).toEqual({ projectId: 'proj_a', strategy: 'ON_LATEST_VERSION' });
      });

      it.each([
        [undefined, 'projectId'],
        [{ projectId: 'proj_a' }, 'strategy'],
        [{ projectId: 'proj_a', strategy: 'FROM_SCRATCH' }, 'strategy'],
        [{ strategy: 'FROM_FAILED_STEP' }, 'projectId'],
        [{ strategy: 'FROM_FAILED_STEP', projectId: '' }, 'projectId'],
      ])('answers 400 for %j naming %s, without calling the command service', async (body, field) => {
        const res = await call('POST', '/api/v1/flow-runs/run_a2/retry', { body });
        expect(res.status).toBe(400);
        expect(res.body).toEqual(validation(field));
        expect(fake.received).toHaveLength(0);
      });

      it('answers 404 for another project’s projectId without calling the command service', async () => {
        const res = await call('POST', '/api/v1/flow-runs/run_b1/retry', { body: { strategy: 'FROM_FAILED_STEP', projectId: 'proj_b' } });
        expect(res.status).toBe(404);
        expect(res.body.params).toMatchObject({ entityType: 'project', entityId: 'proj_b' });
        expect(fake.received).toHaveLength(0);
      });

      it('answers another project’s run exactly like an unknown one', async () => {
        const foreign = await call('POST', '/api/v1/flow-runs/run_b1/retry', { body: { strategy: 'FROM_FAILED_STEP', projectId: 'proj_a' } });
        const unknown = await call('POST', '/api/v1/flow-runs/run_unknown/retry', { body: { strategy: 'FROM_FAILED_STEP', projectId: 'proj_a' } });
        expect(foreign.status).toBe(404);
        expect(foreign.body).toEqual(notFound('flow_run', 'run_b1', 'Flow run not found'));
        expect(unknown.body).toEqual(notFound('flow_run', 'run_unknown', 'Flow run not found'));
        // The command service was asked within the key's project, never the run's.
        expect(fake.received.map((r) => (r.body as { projectId: string }).projectId)).toEqual(['proj_a', 'proj_a']);
      });

      it.each([
        ['run_a1', 409, 'INVALID_TRANSITION'],
        ['run_purged', 410, 'EXECUTION_DATA_PURGED'],
      ])('passes the command service’s envelope through for %s (%i %s)', async (id, status, code) => {
        const res = await call('POST', `/api/v1/flow-runs/${id}/retry`, { body: { strategy: 'FROM_FAILED_STEP', projectId: 'proj_a' } });
        expect(res.status).toBe(status);
        expect(res.body).toMatchObject({ statusCode: status, code });
      });
    });

    describe('resume with human input (no API key)', () => {
      const requestId = 'req_0123456789abcdef0123456789abcdef';
      const result = { runId: 'run_a3', stepName: 'approve', output: { approved: true, comments: 'Looks good!' } };

      beforeEach(() => {
        fake.reply = (r) => {
          const id = /^\/internal\/runs\/([^/]+)\/resume$/.exec(r.url)?.[1];
          const body = r.body as { requestId: string; body: unknown };
          if (id === 'run_a1') return { status: 409, json: { statusCode: 409, code: 'INVALID_TRANSITION', params: { from: 'SUCCEEDED', command: 'ResumeRun' } } };
          if (body.requestId === 'req_used') return { status: 404, json: { statusCode: 404, code: 'PAUSE_REQUEST_MISMATCH', params: { requestId: 'req_used' } } };
          if (body.requestId === 'req_expired') return { status: 410, json: { statusCode: 410, code: 'PAUSE_EXPIRED', params: { requestId: 'req_expired' } } };
          // Echoes the input as the step's output (an approval step's output is the resume body), with a field the public answer leaves out.
          return { status: 200, json: { runId: id, stepName: 'approve', output: body.body, internalOnly: 1 } };
        };
      });

      it('/sync forwards { requestId, body } without any API key and answers 200 { runId, stepName, output }', async () => {
        const res = await call('POST', `/api/v1/flow-runs/run_a3/requests/${requestId}/sync`, { key: null, body: result.output, headers: withTrace });
        expect(res.status).toBe(200);
        expect(res.body).toEqual(result);
        expect(fake.received).toHaveLength(1);
        expectForwarded(fake.received[0], 'POST', '/internal/runs/run_a3/resume');
        expect(fake.received[0].body).toEqual({ requestId, body: result.output });
        expect(ResumeRunRequestSchema.strict().parse(fake.received[0].body)).toEqual(fake.received[0].body);
      });

      it('the async form answers 202 { accepted: true } after one internal call', async () => {
        const res = await call('POST', `/api/v1/flow-runs/run_a3/requests/${requestId}`, { key: null, body: { approved: false }, headers: withTrace });
        expect(res.status).toBe(202);
        expect(res.body).toEqual({ accepted: true });
        expect(fake.received).toHaveLength(1);
        expectForwarded(fake.received[0], 'POST', '/internal/runs/run_a3/resume');
        expect(ResumeRunRequestSchema.strict().parse(fake.received[0].body)).toEqual({ requestId, body: { approved: false } });
      });

      it('ignores an Authorization header, even an invalid one (the request id is the capability)', async () => {
        const res = await call('POST', `/api/v1/flow-runs/run_a3/requests/${requestId}/sync`, { key: 'sk-not-a-key', body: {} });
        expect(res.status).toBe(200);
        expect(fake.received[0].headers.authorization).toBeUndefined();
      });

      it('takes any JSON as the input, and no body as {}', async () => {
        await call('POST', `/api/v1/flow-runs/run_a3/requests/${requestId}/sync`, { key: null, raw: '"yes"' });
        await call('POST', `/api/v1/flow-runs/run_a3/requests/${requestId}/sync`, { key: null, raw: '[1,2]' });
        await call('POST', `/api/v1/flow-runs/run_a3/requests/${requestId}/sync`, { key: null, raw: 'null' });
        await call('POST', `/api/v1/flow-runs/run_a3/requests/${requestId}`, { key: null });
        expect(fake.received.map((r) => (r.body as { body: unknown }).body)).toEqual(['yes', [1, 2], null, {}]);
        for (const r of fake.received) expect(ResumeRunRequestSchema.strict().safeParse(r.body).success).toBe(true);
      });

      it.each(['sync', 'async'])('%s: passes 409 (not paused), 404 (unknown or used id) and 410 (expired) through', async (form) => {
        const path = (run: string, req: string) => `/api/v1/flow-runs/${run}/requests/${req}${form === 'sync' ? '/sync' : ''}`;
        const notPaused = await call('POST', path('run_a1', requestId), { key: null, body: {} });
        expect(notPaused.status).toBe(409);
        expect(notPaused.body).toEqual({ statusCode: 409, code: 'INVALID_TRANSITION', params: { from: 'SUCCEEDED', command: 'ResumeRun' } });
        const used = await call('POST', path('run_a3', 'req_used'), { key: null, body: {} });
        expect(used.status).toBe(404);
        expect(used.body).toEqual({ statusCode: 404, code: 'PAUSE_REQUEST_MISMATCH', params: { requestId: 'req_used' } });
        const expired = await call('POST', path('run_a3', 'req_expired'), { key: null, body: {} });
        expect(expired.status).toBe(410);
        expect(expired.body).toEqual({ statusCode: 410, code: 'PAUSE_EXPIRED', params: { requestId: 'req_expired' } });
      });

      it('answers 400 naming requestId for one longer than the contract allows', async () => {
        const res = await call('POST', `/api/v1/flow-runs/run_a3/requests/${'r'.repeat(129)}/sync`, { key: null, body: {} });
        expect(res.status).toBe(400);
        expect(res.body).toEqual(validation('requestId'));
        expect(fake.received).toHaveLength(0);
      });

      it('answers 503 when the command service’s answer breaks the ResumeResult contract', async () => {
        fake.reply = () => ({ status: 200, json: { runId: 'run_a3' } });
        const res = await call('POST', `/api/v1/flow-runs/run_a3/requests/${requestId}/sync`, { key: null, body: {} });
        expect(res.status).toBe(503);
        expect(res.body.code).toBe('SERVICE_UNAVAILABLE');
      });
    });

    describe('bulk cancel / retry / archive (the command service selects and changes the runs)', () => {
      const BULK = '/internal/runs/bulk';
      const answer = (action: string, changed: number) => () => ({ status: 200, json: { action, changed, examined: changed + 2 } });

      it.each([
        ['cancel', {}, { action: 'cancel', reason: 'cancelled by key_a', filter: {} }, { cancelled: 7 }],
        [
          'cancel',
          { flowId: 'flow_1', status: ['PAUSED'], excludeFlowRunIds: ['run_a1'], createdAfter: '2024-02-01T01:00:07+01:00' },
          {
            action: 'cancel',
            reason: 'cancelled by key_a',
            filter: { flowId: 'flow_1', status: ['PAUSED'], excludeFlowRunIds: ['run_a1'], createdAfter: '2024-02-01T01:00:07+01:00' },
          },
          { cancelled: 7 },
        ],
        ['retry', { strategy: 'FROM_FAILED_STEP', failedStepName: 'b' }, { action: 'retry', strategy: 'FROM_FAILED_STEP', filter: { failedStepName: 'b' } }, { retried: 7 }],
        [
          'retry',
          { strategy: 'ON_LATEST_VERSION', flowRunIds: ['run_a1', 'run_b1'], projectId: 'proj_a' },
          { action: 'retry', strategy: 'ON_LATEST_VERSION', filter: { flowRunIds: ['run_a1', 'run_b1'] } },
          { retried: 7 },
        ],
        ['archive', { status: ['SUCCEEDED'], createdBefore: '2024-01-01T00:00:00.000Z' }, { action: 'archive', filter: { status: ['SUCCEEDED'], createdBefore: '2024-01-01T00:00:00.000Z' } }, { archived: 7 }],
      ])('%s %j: forwards the filter scoped to the key’s project and answers the count changed', async (action, body, forwarded, expected) => {
        fake.reply = answer(action, 7);
        const res = await call('POST', `/api/v1/flow-runs/${action}`, { body, headers: withTrace });
        expect(res.status).toBe(200);
        expect(res.body).toEqual(expected);
        expect(fake.received).toHaveLength(1);
        expectForwarded(fake.received[0], 'POST', BULK);
        // Always the key's project: the command service never selects another project's runs.
        expect(fake.received[0].body).toEqual({ projectId: 'proj_a', ...forwarded });
        expect(BulkRunRequestSchema.parse(fake.received[0].body)).toMatchObject({ projectId: 'proj_a', action });
      });

      it.each(['cancel', 'retry', 'archive'])('%s: answers 404 for another project’s projectId without calling the command service', async (action) => {
        const body = { projectId: 'proj_b', ...(action === 'retry' ? { strategy: 'FROM_FAILED_STEP' } : {}) };
        const res = await call('POST', `/api/v1/flow-runs/${action}`, { body });
        expect(res.status).toBe(404);
        expect(res.body.params).toMatchObject({ entityType: 'project', entityId: 'proj_b' });
        expect(fake.received).toHaveLength(0);
      });

      it('passes a command-service error envelope through with its status', async () => {
        fake.reply = () => ({ status: 500, json: { statusCode: 500, code: 'INTERNAL_ERROR', params: { message: 'internal error' } } });
        const res = await call('POST', '/api/v1/flow-runs/archive', { body: {} });
        expect(res.status).toBe(500);
        expect(res.body).toEqual({ statusCode: 500, code: 'INTERNAL_ERROR', params: { message: 'internal error' } });
      });

      it('answers 503 when the command service breaks the result contract or passes GATEWAY_BULK_TIMEOUT_MS', async () => {
        fake.reply = () => ({ status: 200, json: { cancelled: 3 } });
        expect((await call('POST', '/api/v1/flow-runs/cancel', { body: {} })).status).toBe(503);
        fake.reply = () => 'hang';
        const started = Date.now();
        const res = await call('POST', '/api/v1/flow-runs/cancel', { body: {} });
        expect(res.status).toBe(503);
        expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
      });

      const bad: [string, string, unknown, string][] = [
        ['cancel', 'no body at all', undefined, 'body'],
        ['cancel', 'an array', [], 'body'],
        ['cancel', 'empty flowRunIds', { flowRunIds: [] }, 'flowRunIds'],
        ['cancel', '1001 flowRunIds', { flowRunIds: Array.from({ length: 1001 }, (_, i) => `run_${i}`) }, 'flowRunIds'],
        ['cancel', 'an empty id', { flowRunIds: ['run_a1', ''] }, 'flowRunIds.1'],
        ['cancel', 'a status that cannot be cancelled', { status: ['RUNNING', 'FAILED'] }, 'status.1'],
        ['cancel', 'status not an array', { status: 'RUNNING' }, 'status'],
        ['cancel', 'an empty status list', { status: [] }, 'status'],
        ['cancel', 'excludeFlowRunIds not an array', { excludeFlowRunIds: 'run_a1' }, 'excludeFlowRunIds'],
        ['cancel', 'createdAfter without a zone', { createdAfter: '2024-01-15T10:30:00' }, 'createdAfter'],
        ['cancel', 'createdBefore that is not a time', { createdBefore: 'yesterday' }, 'createdBefore'],
        ['cancel', 'flowId empty', { flowId: '' }, 'flowId'],
        ['cancel', 'a misspelt filter (would widen the cancel)', { flowID: 'flow_1' }, 'flowID'],
        ['retry', 'no strategy', { status: ['FAILED'] }, 'strategy'],
        ['retry', 'an unknown strategy', { strategy: 'AGAIN' }, 'strategy'],
        ['retry', 'an unknown status', { strategy: 'FROM_FAILED_STEP', status: ['BROKEN'] }, 'status.0'],
        ['retry', 'no body at all', undefined, 'body'],
        ['archive', 'a strategy (archive takes none)', { strategy: 'FROM_FAILED_STEP' }, 'strategy'],
        ['archive', 'a misspelt filter', { createdafter: '2024-01-15T10:30:00Z' }, 'createdafter'],
        ['archive', 'failedStepName empty', { failedStepName: '' }, 'failedStepName'],
      ];
      it.each(bad)('%s: answers 400 for %s naming %s, calling nothing', async (action, _what, body, field) => {
        const res = await call('POST', `/api/v1/flow-runs/${action}`, { body });
        expect(res.status).toBe(400);
        expect(res.body).toEqual(validation(field));
        expect(fake.received).toHaveLength(0);
      });
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
      expect(metrics).toMatch(/flowruns_http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/flow-runs\/:id",status="200"\} \d+/);
      expect(metrics).toMatch(/flowruns_http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/flow-runs\/:id",status="404"\} \d+/);
      expect(metrics).not.toContain('definitely-missing');
    });
  });
});
