import { randomBytes } from 'node:crypto';
import { FlowRunSchema, FlowRunWithStepsSchema, type FlowRun, type FlowRunWithSteps } from '@flowruns/contracts';
import { waitFor } from '@flowruns/testing';
import { assertContractAnswer, newApiKey, gatewayClient, httpRequest, startTarget, type HttpAnswer } from './client';
import { startSystem } from './harness';

/**
 * The public HTTP contract, endpoint by endpoint, against the running system (command service,
 * projector, gateway, flow worker; real Postgres and Kafka): every list filter and its 400 naming
 * the parameter, a run with its steps, single retry with both strategies and its refusals, bulk
 * cancel / retry / archive counting only the runs they changed, resume sync and async, nested
 * triggers, body limits and unknown routes. Every answer of the suite goes through one check:
 * never a 5xx, and every error is exactly the envelope `{ statusCode, code, params }`.
 */

const P = 'proj_contract';
const MAX_ATTEMPTS = 2;

describe('the public HTTP contract, over a running system', () => {
  let system: Awaited<ReturnType<typeof startSystem>>;
  let target: Awaited<ReturnType<typeof startTarget>>;
  let url: string;
  let key: string;
  let keyId: string;
  let api: ReturnType<typeof gatewayClient>;
  const flows: Record<'ok' | 'broken' | 'flaky' | 'approval' | 'slow' | 'fails', string> = {} as never;
  let answers = 0;

  /** Every request of the suite: the contract check applies to each answer, whatever the test expects. */
  const req = async (
    method: string,
    p: string,
    opts: { key?: string | null; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
  ): Promise<HttpAnswer> => {
    const a = await httpRequest(url, method, p, { key: opts.key === undefined ? key : opts.key, body: opts.body, rawBody: opts.rawBody, headers: opts.headers });
    answers++;
    assertContractAnswer(`${method} ${p}`, a);
    return a;
  };
  const get = (p: string) => req('GET', p);
  const post = (p: string, body?: unknown, headers?: Record<string, string>) => req('POST', p, { body, headers });

  const expectError = (a: HttpAnswer, status: number, code: string, params: Record<string, unknown> = {}) => {
    expect({ status: a.status, code: a.body?.code }).toEqual({ status, code });
    expect(a.body.params).toMatchObject(params);
  };

  const createFlow = async (displayName: string, steps: unknown[], tags: string[] = [], projectKey = key, projectId = P) => {
    const r = await req('POST', '/api/v1/flows', { key: projectKey, body: { projectId, displayName, tags, steps } });
    expect({ status: r.status, body: r.status === 201 ? 'ok' : r.body }).toEqual({ status: 201, body: 'ok' });
    return r.body.id as string;
  };
  const trigger = async (flowId: string, payload: unknown = {}, headers?: Record<string, string>, projectKey = key) => {
    const r = await req('POST', `/api/v1/flows/${flowId}/run`, { key: projectKey, body: payload, headers });
    expect({ status: r.status, body: r.status === 201 ? 'ok' : r.body }).toEqual({ status: 201, body: 'ok' });
    return r.body as FlowRun;
  };
  const run = (id: string, status: string | ((r: FlowRunWithSteps) => boolean)) => api.waitForRun(id, status);
  const started = async (flow: keyof typeof flows, status: string, payload: unknown = {}) => {
    const r = await trigger(flows[flow], payload);
    return run(r.id, status);
  };
  const requestId = () => `req_${randomBytes(24).toString('base64url')}`;

  beforeAll(async () => {
    target = await startTarget((request) => {
      if (request.url === '/customers/42') return { status: 200, body: { id: 42, name: 'Ada' } };
      if (request.url === '/broken') return { status: 500, body: { error: 'always' } };
      // Fails the first call of each path, succeeds afterwards.
      if (request.url?.startsWith('/flaky/')) return target.count(request.url) === 1 ? { status: 503, body: { error: 'once' } } : { status: 200, body: { ok: true } };
      return { status: 200, body: { path: request.url } };
    });
    system = await startSystem(['command-service', 'projector', 'api-gateway', 'flow-worker'], {
      AP_MAX_RETRY_ATTEMPTS: String(MAX_ATTEMPTS),
      // Delay steps hold a worker slot each; and they must not hold the worker's shutdown.
      FLOW_WORKER_CONCURRENCY: '64',
      FLOW_WORKER_SHUTDOWN_TIMEOUT_MS: '0',
    });
    url = system.apps['api-gateway'].url;
    ({ id: keyId, key } = await newApiKey(system.db.url, P));
    api = gatewayClient(url, key);
    [flows.ok, flows.broken, flows.flaky, flows.approval, flows.slow, flows.fails] = await Promise.all([
      createFlow(
        'OK',
        [
          { name: 'fetch', type: 'http', settings: { method: 'GET', url: `${target.url}/customers/42` } },
          { name: 'shape', type: 'transform', settings: { value: { hello: '{{steps.fetch.output.body.name}}', from: '{{trigger.from}}' } } },
        ],
        ['contract', 'ok'],
      ),
      createFlow('Broken', [
        { name: 'first', type: 'transform', settings: { value: 1 } },
        { name: 'call', type: 'http', settings: { method: 'GET', url: `${target.url}/broken` } },
      ]),
      createFlow('Flaky', [
        { name: 'first', type: 'http', settings: { method: 'POST', url: `${target.url}/first/{{trigger.k}}` } },
        { name: 'flaky', type: 'http', settings: { method: 'GET', url: `${target.url}/flaky/{{trigger.k}}` } },
      ]),
      createFlow('Approval', [
        { name: 'approve', type: 'approval', settings: {} },
        { name: 'after', type: 'transform', settings: { value: 'comment: {{steps.approve.output.comment}}' } },
      ]),
      createFlow('Slow', [{ name: 'wait', type: 'delay', settings: { ms: 120_000 } }]),
      createFlow('Fails', [{ name: 'boom', type: 'fail', settings: { message: 'it failed' } }]),
    ]);
  });

  afterAll(async () => {
    await system?.stop();
    await target?.close();
  });

  describe('GET /api/v1/flow-runs: validation', () => {
    const validCursorShape = Buffer.from(JSON.stringify({ t: '2024-01-15T10:30:00.123Z', i: 'x', d: 'n' })).toString('base64url');
    const BAD: readonly (readonly [string, string, string])[] = [
      ['no projectId', 'limit=10', 'projectId'],
      ['projectId twice', `projectId=${P}&projectId=${P}`, 'projectId'],
      ['an unknown status', `projectId=${P}&status=BOGUS`, 'status'],
      ['an unknown status among good ones', `projectId=${P}&status=RUNNING&status=done`, 'status'],
      ['limit 0', `projectId=${P}&limit=0`, 'limit'],
      ['limit 101', `projectId=${P}&limit=101`, 'limit'],
      ['limit x', `projectId=${P}&limit=x`, 'limit'],
      ['limit 1.5', `projectId=${P}&limit=1.5`, 'limit'],
      ['limit -1', `projectId=${P}&limit=-1`, 'limit'],
      ['limit twice', `projectId=${P}&limit=10&limit=20`, 'limit'],
      ['flowId twice', `projectId=${P}&flowId=a&flowId=b`, 'flowId'],
      ['failedStepName twice', `projectId=${P}&failedStepName=a&failedStepName=b`, 'failedStepName'],
      ['cursor twice', `projectId=${P}&cursor=a&cursor=b`, 'cursor'],
      ['createdAfter not a time', `projectId=${P}&createdAfter=yesterday`, 'createdAfter'],
      ['createdAfter without a time zone', `projectId=${P}&createdAfter=2024-01-15T10:30:00`, 'createdAfter'],
      ['createdBefore a date only', `projectId=${P}&createdBefore=2024-01-15`, 'createdBefore'],
      ['createdBefore an impossible date', `projectId=${P}&createdBefore=2024-02-30T10:30:00Z`, 'createdBefore'],
      ['createdAfter twice', `projectId=${P}&createdAfter=2024-01-15T10:30:00Z&createdAfter=2024-01-16T10:30:00Z`, 'createdAfter'],
      ['includeArchived not a boolean', `projectId=${P}&includeArchived=yes`, 'includeArchived'],
      ['a cursor that is not base64url JSON', `projectId=${P}&cursor=%25%25%25not-a-cursor`, 'cursor'],
      ['an empty cursor', `projectId=${P}&cursor=`, 'cursor'],
      ['a cursor with a millisecond timestamp', `projectId=${P}&cursor=${validCursorShape}`, 'cursor'],
      ['more than 100 flowRunIds', `projectId=${P}&${Array.from({ length: 101 }, (_, i) => `flowRunIds=r${i}`).join('&')}`, 'flowRunIds'],
    ];

    it.each(BAD)('%s → 400 VALIDATION naming the parameter', async (_what, query, field) => {
      const a = await get(`/api/v1/flow-runs?${query}`);
      expectError(a, 400, 'VALIDATION', { field });
      expect(typeof a.body.params.message).toBe('string');
    });

    it('another project’s projectId → 404 project', async () => {
      expectError(await get('/api/v1/flow-runs?projectId=proj_someone_else'), 404, 'ENTITY_NOT_FOUND', { entityType: 'project', entityId: 'proj_someone_else' });
    });
  });

  describe('GET /api/v1/flow-runs: every filter against real runs', () => {
    const L = 'proj_contract_list';
    let listKey: string;
    let l1: string;
    let l2: string;
    let seen: FlowRun[];

    beforeAll(async () => {
      listKey = (await newApiKey(system.db.url, L)).key;
      l1 = await createFlow('L1', [{ name: 'ok', type: 'transform', settings: { value: 1 } }], ['x', 'y'], listKey, L);
      l2 = await createFlow('L2', [{ name: 'boom', type: 'fail', settings: { message: 'no' } }], ['y'], listKey, L);
      const listApi = gatewayClient(url, listKey);
      // One after the other, so their `created` differ and the time filters can split them.
      const ids: string[] = [];
      for (const flowId of [l1, l2, l1, l2]) {
        const r = await trigger(flowId, {}, undefined, listKey);
        await listApi.waitForRun(r.id, (x) => x.status === 'SUCCEEDED' || x.status === 'FAILED');
        ids.push(r.id);
      }
      const all = await req('GET', `/api/v1/flow-runs?projectId=${L}&limit=100`, { key: listKey });
      seen = all.body.data as FlowRun[];
      expect(seen.map((r) => r.id).sort()).toEqual([...ids].sort());
    });

    /** The oracle: the four runs as the list shows them, filtered and in list order. */
    const expected = (keep: (r: FlowRun) => boolean) =>
      seen
        .filter(keep)
        .sort((a, b) => (a.created !== b.created ? (a.created < b.created ? 1 : -1) : a.id < b.id ? 1 : -1))
        .map((r) => r.id);
    const byCreated = () => [...seen].sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : 0));

    const FILTERS: readonly (readonly [string, () => string, () => (r: FlowRun) => boolean])[] = [
      ['no filter', () => '', () => () => true],
      ['status one', () => 'status=FAILED', () => (r) => r.status === 'FAILED'],
      ['status repeated', () => 'status=FAILED&status=SUCCEEDED', () => () => true],
      ['status[] bracket form', () => 'status[]=SUCCEEDED', () => (r) => r.status === 'SUCCEEDED'],
      ['status with no match', () => 'status=PAUSED', () => () => false],
      ['flowId', () => `flowId=${l1}`, () => (r) => r.flowId === l1],
      ['tags: all must match', () => 'tags=x&tags=y', () => (r) => r.flowId === l1],
      ['tags: one tag shared by all', () => 'tags=y', () => () => true],
      ['tags: one tag nobody has, next to one all have', () => 'tags=y&tags=nope', () => () => false],
      ['failedStepName', () => 'failedStepName=boom', () => (r) => r.failedStepName === 'boom'],
      ['failedStepName with no match', () => 'failedStepName=ok', () => () => false],
      ['flowRunIds', () => `flowRunIds=${byCreated()[0].id}&flowRunIds=${byCreated()[3].id}`, () => (r) => [byCreated()[0].id, byCreated()[3].id].includes(r.id)],
      ['flowRunIds[] bracket form', () => `flowRunIds[]=${byCreated()[1].id}`, () => (r) => r.id === byCreated()[1].id],
      ['createdAfter is inclusive', () => `createdAfter=${byCreated()[2].created}`, () => (r) => r.created >= byCreated()[2].created],
      ['createdBefore is inclusive', () => `createdBefore=${byCreated()[1].created}`, () => (r) => r.created <= byCreated()[1].created],
      [
        'createdAfter and createdBefore the same instant',
        () => `createdAfter=${byCreated()[1].created}&createdBefore=${byCreated()[1].created}`,
        () => (r) => r.created === byCreated()[1].created,
      ],
      [
        'combined: status, flowId, tags and a window',
        () => `status=FAILED&flowId=${l2}&tags=y&createdAfter=${byCreated()[0].created}&createdBefore=${byCreated()[3].created}`,
        () => (r) => r.flowId === l2,
      ],
    ];

    it.each(FILTERS)('%s', async (_what, query, keep) => {
      const a = await req('GET', `/api/v1/flow-runs?projectId=${L}&limit=100${query() ? `&${query()}` : ''}`, { key: listKey });
      expect(a.status).toBe(200);
      expect((a.body.data as FlowRun[]).map((r) => r.id)).toEqual(expected(keep()));
      expect(a.body).toMatchObject({ next: null, previous: null });
    });

    it('list items are FlowRuns without steps or logsFileId, and limit=1 pages through all four and back', async () => {
      const ids: string[] = [];
      let cursor: string | null = null;
      let last: HttpAnswer | undefined;
      do {
        last = await req('GET', `/api/v1/flow-runs?projectId=${L}&limit=1${cursor ? `&cursor=${cursor}` : ''}`, { key: listKey });
        const [item] = last.body.data as FlowRun[];
        expect(FlowRunSchema.strict().parse(item)).toEqual(item);
        expect(item).not.toHaveProperty('steps');
        expect(item).not.toHaveProperty('logsFileId');
        ids.push(item.id);
        cursor = last.body.next;
      } while (cursor);
      expect(ids).toEqual(expected(() => true));
      const back = await req('GET', `/api/v1/flow-runs?projectId=${L}&limit=1&cursor=${last.body.previous}`, { key: listKey });
      expect((back.body.data as FlowRun[]).map((r) => r.id)).toEqual([ids[2]]);
    });
  });

  describe('GET /api/v1/flow-runs/:id', () => {
    it('answers a succeeded run with its steps (type, status, input, output, duration), the trigger payload and logsFileId', async () => {
      const done = await started('ok', 'SUCCEEDED', { from: 'contract' });
      const a = await get(`/api/v1/flow-runs/${done.id}`);
      expect(a.status).toBe(200);
      const body = a.body as FlowRunWithSteps;
      expect(FlowRunWithStepsSchema.strict().parse(body)).toEqual(body);
      expect(body).toMatchObject({ projectId: P, flowId: flows.ok, status: 'SUCCEEDED', stepsCount: 2, tags: ['contract', 'ok'], attempt: 1, triggeredBy: keyId });
      expect(body).toHaveProperty('logsFileId');
      expect(body.finishTime).not.toBeNull();
      expect(Object.keys(body.steps)).toEqual(['trigger', 'fetch', 'shape']);
      expect(body.steps.trigger).toEqual({ type: 'TRIGGER', output: { from: 'contract' } });
      expect(body.steps.fetch).toMatchObject({ type: 'http', status: 'SUCCEEDED', input: expect.anything(), output: { status: 200, body: { id: 42, name: 'Ada' } } });
      expect(body.steps.shape).toMatchObject({ type: 'transform', status: 'SUCCEEDED', output: { hello: 'Ada', from: 'contract' } });
      for (const s of ['fetch', 'shape']) expect(body.steps[s].duration).toEqual(expect.any(Number));
    });

    it('answers a failed run with the failed step, its error and failedStepName', async () => {
      const failed = await started('broken', 'FAILED');
      expect(failed.failedStepName).toBe('call');
      expect(failed.steps.first.status).toBe('SUCCEEDED');
      expect(failed.steps.call).toMatchObject({ type: 'http', status: 'FAILED', error: expect.objectContaining({ status: 500 }) });
    });

    it.each([
      ['an unknown run', '/api/v1/flow-runs/run_does_not_exist', { entityType: 'flow_run', entityId: 'run_does_not_exist', message: 'Flow run not found' }],
      ['another project named in projectId', '/api/v1/flow-runs/run_does_not_exist?projectId=proj_other', { entityType: 'project', entityId: 'proj_other' }],
    ] as const)('%s → 404 ENTITY_NOT_FOUND', async (_what, p, params) => {
      expectError(await get(p), 404, 'ENTITY_NOT_FOUND', params);
    });
  });

  describe('POST /api/v1/flow-runs/:id/retry', () => {
    it('FROM_FAILED_STEP answers 200 with the same run in attempt 2, which resumes at the failed step', async () => {
      const k = randomBytes(6).toString('hex');
      const failed = await started('flaky', 'FAILED', { k });
      const a = await post(`/api/v1/flow-runs/${failed.id}/retry`, { strategy: 'FROM_FAILED_STEP', projectId: P });
      expect(a.status).toBe(200);
      expect(a.headers.get('location')).toBeNull();
      expect(a.body).toMatchObject({ id: failed.id, attempt: 2 });
      expect(FlowRunSchema.strict().parse(a.body)).toEqual(a.body);
      const done = await run(failed.id, (r) => r.status === 'SUCCEEDED' && r.attempt === 2);
      expect(done.steps.flaky.output).toMatchObject({ status: 200 });
      expect(target.count(`/first/${k}`)).toBe(1);
    });

    it('ON_LATEST_VERSION answers 201 with the new run and its Location; the new run runs the newest version', async () => {
      const flowId = await createFlow('Versioned', [{ name: 'boom', type: 'fail', settings: { message: 'v1' } }]);
      const failed = (await trigger(flowId, { x: 'original' })).id;
      await run(failed, 'FAILED');
      const v2 = await post(`/api/v1/flows/${flowId}/versions`, { steps: [{ name: 'fixed', type: 'transform', settings: { value: '{{trigger.x}}' } }] });
      expect(v2.status).toBe(201);
      expect(v2.body.version).toMatchObject({ version: 2 });

      const a = await post(`/api/v1/flow-runs/${failed}/retry`, { strategy: 'ON_LATEST_VERSION', projectId: P });
      expect(a.status).toBe(201);
      const newId = a.body.id as string;
      expect(newId).not.toBe(failed);
      expect(a.headers.get('location')).toBe(`/api/v1/flow-runs/${newId}`);
      expect(a.body).toMatchObject({ retryOf: failed, flowVersionId: v2.body.version.id });
      const done = await run(newId, 'SUCCEEDED');
      expect(done.steps.fixed.output).toBe('original');
      expect((await get(`/api/v1/flow-runs/${failed}`)).body.status).toBe('FAILED');
    });

    it.each([
      ['FROM_FAILED_STEP on a SUCCEEDED run', 'ok', 'SUCCEEDED', 'FROM_FAILED_STEP'],
      ['FROM_FAILED_STEP on a PAUSED run', 'approval', 'PAUSED', 'FROM_FAILED_STEP'],
      ['ON_LATEST_VERSION on a PAUSED run', 'approval', 'PAUSED', 'ON_LATEST_VERSION'],
      ['ON_LATEST_VERSION on a RUNNING run', 'slow', 'RUNNING', 'ON_LATEST_VERSION'],
    ] as const)('%s → 409 INVALID_TRANSITION naming the current status', async (_what, flow, status, strategy) => {
      const r = await started(flow, status);
      expectError(await post(`/api/v1/flow-runs/${r.id}/retry`, { strategy, projectId: P }), 409, 'INVALID_TRANSITION', { entityId: r.id, status });
      expect((await get(`/api/v1/flow-runs/${r.id}`)).body).toMatchObject({ status, attempt: 1 });
    });

    it(`→ 409 MAX_ATTEMPTS_REACHED once a run was tried ${MAX_ATTEMPTS} times (AP_MAX_RETRY_ATTEMPTS)`, async () => {
      const failed = await started('broken', 'FAILED');
      expect((await post(`/api/v1/flow-runs/${failed.id}/retry`, { strategy: 'FROM_FAILED_STEP', projectId: P })).status).toBe(200);
      await run(failed.id, (r) => r.status === 'FAILED' && r.attempt === 2);
      for (const strategy of ['FROM_FAILED_STEP', 'ON_LATEST_VERSION']) {
        expectError(await post(`/api/v1/flow-runs/${failed.id}/retry`, { strategy, projectId: P }), 409, 'MAX_ATTEMPTS_REACHED', {
          entityId: failed.id,
          attempts: MAX_ATTEMPTS,
          maxAttempts: MAX_ATTEMPTS,
        });
      }
    });

    it.each([
      ['no strategy', { projectId: P }, 'strategy'],
      ['an unknown strategy', { projectId: P, strategy: 'SOMETIMES' }, 'strategy'],
      ['no projectId', { strategy: 'FROM_FAILED_STEP' }, 'projectId'],
      ['a body that is not an object', ['FROM_FAILED_STEP'], 'body'],
    ] as const)('%s → 400 VALIDATION naming the field', async (_what, body, field) => {
      expectError(await post('/api/v1/flow-runs/run_whatever/retry', body), 400, 'VALIDATION', { field });
    });

    it('an unknown run → 404 flow_run; another project in the body → 404 project', async () => {
      expectError(await post('/api/v1/flow-runs/run_nope/retry', { strategy: 'FROM_FAILED_STEP', projectId: P }), 404, 'ENTITY_NOT_FOUND', {
        entityType: 'flow_run',
        entityId: 'run_nope',
      });
      expectError(await post('/api/v1/flow-runs/run_nope/retry', { strategy: 'FROM_FAILED_STEP', projectId: 'proj_x' }), 404, 'ENTITY_NOT_FOUND', {
        entityType: 'project',
        entityId: 'proj_x',
      });
    });
  });

  describe('POST /api/v1/flow-runs/cancel', () => {
    it('by ids: stops the running and paused ones, counts only those, and a second identical request counts 0', async () => {
      const [p1, p2, running, succeeded] = await Promise.all([started('approval', 'PAUSED'), started('approval', 'PAUSED'), started('slow', 'RUNNING'), started('ok', 'SUCCEEDED')]);
      const body = { flowRunIds: [p1.id, p2.id, running.id, succeeded.id, 'run_unknown'] };
      expect(await post('/api/v1/flow-runs/cancel', body)).toMatchObject({ status: 200, body: { cancelled: 3 } });
      for (const r of [p1, p2, running]) await run(r.id, 'STOPPED');
      expect((await get(`/api/v1/flow-runs/${succeeded.id}`)).body.status).toBe('SUCCEEDED');
      expect(await post('/api/v1/flow-runs/cancel', body)).toMatchObject({ status: 200, body: { cancelled: 0 } });
    });

    it('by ids: the other filters are ignored', async () => {
      const paused = await started('approval', 'PAUSED');
      const a = await post('/api/v1/flow-runs/cancel', { flowRunIds: [paused.id], flowId: flows.ok, status: ['RUNNING'], createdBefore: '2000-01-01T00:00:00Z' });
      expect(a.body).toEqual({ cancelled: 1 });
      await run(paused.id, 'STOPPED');
    });

    it('by filter: flowId with excludeFlowRunIds, then status, then an inclusive time window', async () => {
      const flowId = await createFlow('Cancel by filter', [{ name: 'approve', type: 'approval', settings: {} }]);
      const ids: FlowRun[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await trigger(flowId);
        await run(r.id, 'PAUSED');
        ids.push(r);
      }
      const [c1, c2, c3, c4] = ids;
      expect((await post('/api/v1/flow-runs/cancel', { flowId, excludeFlowRunIds: [c2.id, c3.id, c4.id] })).body).toEqual({ cancelled: 1 });
      await run(c1.id, 'STOPPED');
      expect((await post('/api/v1/flow-runs/cancel', { flowId, status: ['RUNNING'] })).body).toEqual({ cancelled: 0 });
      // Inclusive: createdAfter = c4.created selects c4; createdBefore = c2.created selects c2 (c1 is stopped already).
      expect((await post('/api/v1/flow-runs/cancel', { flowId, status: ['PAUSED'], createdAfter: c4.created })).body).toEqual({ cancelled: 1 });
      expect((await post('/api/v1/flow-runs/cancel', { flowId, createdBefore: c2.created })).body).toEqual({ cancelled: 1 });
      await run(c4.id, 'STOPPED');
      await run(c2.id, 'STOPPED');
      expect((await get(`/api/v1/flow-runs/${c3.id}`)).body.status).toBe('PAUSED');
      expect((await post('/api/v1/flow-runs/cancel', { flowId })).body).toEqual({ cancelled: 1 });
      await run(c3.id, 'STOPPED');
    });

    it('a createdAfter with microseconds selects what the list selects with it (no rounding down to the millisecond)', async () => {
      const flowId = await createFlow('Sub-millisecond window', [{ name: 'approve', type: 'approval', settings: {} }]);
      const paused = await run((await trigger(flowId)).id, 'PAUSED');
      // `created` has millisecond precision: 999 µs after it is strictly after the run was created.
      const justAfter = paused.created.replace(/Z$/, '999Z');
      expect(justAfter).toMatch(/\.\d{6}Z$/);
      const listed = await get(`/api/v1/flow-runs?projectId=${P}&flowId=${flowId}&createdAfter=${justAfter}`);
      expect(listed.body.data).toEqual([]);
      const cancel = await post('/api/v1/flow-runs/cancel', { flowId, createdAfter: justAfter });
      const archive = await post('/api/v1/flow-runs/archive', { flowId, createdAfter: justAfter });
      const after = (await get(`/api/v1/flow-runs/${paused.id}`)).body as FlowRun;
      expect({ cancel: cancel.body, archive: archive.body, status: after.status, archivedAt: after.archivedAt }).toEqual({
        cancel: { cancelled: 0 },
        archive: { archived: 0 },
        status: 'PAUSED',
        archivedAt: null,
      });
      await post('/api/v1/flow-runs/cancel', { flowRunIds: [paused.id] });
    });

    it('cancelling a parent stops its descendants: a subflow child, and a child triggered with ap-parent-run-id', async () => {
      const childFlow = await createFlow('Waiting child', [{ name: 'approve', type: 'approval', settings: {} }]);
      const parentFlow = await createFlow('Parent', [{ name: 'call_child', type: 'subflow', settings: { flowId: childFlow, failParentOnFailure: true } }]);
      const parent = (await trigger(parentFlow)).id;
      const child = await waitFor(
        async () => {
          const a = await get(`/api/v1/flow-runs?projectId=${P}&flowId=${childFlow}&status=PAUSED`);
          return (a.body.data as FlowRun[]).find((r) => r.parentRunId === parent);
        },
        { timeoutMs: 30_000, what: 'the subflow child to pause' },
      );
      // A grandchild through the header, under the child.
      const grandchild = (await trigger(flows.approval, {}, { 'ap-parent-run-id': child.id })).id;
      expect((await run(grandchild, 'PAUSED')).parentRunId).toBe(child.id);
      await run(parent, 'RUNNING');

      expect((await post('/api/v1/flow-runs/cancel', { flowRunIds: [parent] })).body).toEqual({ cancelled: 1 });
      await run(parent, 'STOPPED');
      await run(child.id, 'STOPPED');
      await run(grandchild, 'STOPPED');
    });

    it.each([
      ['no body', undefined, 'body'],
      ['a status that cannot be cancelled', { status: ['SUCCEEDED'] }, 'status'],
      ['an empty flowRunIds', { flowRunIds: [] }, 'flowRunIds'],
      ['a misspelt filter', { flowID: 'x' }, 'flowID'],
      ['tags (not a bulk filter)', { tags: ['x'] }, 'tags'],
      ['a bad timestamp', { createdAfter: 'yesterday' }, 'createdAfter'],
    ] as const)('%s → 400 VALIDATION naming the field', async (_what, body, field) => {
      const a = await post('/api/v1/flow-runs/cancel', body);
      expectError(a, 400, 'VALIDATION');
      expect(String(a.body.params.field)).toMatch(new RegExp(`^${field}`));
    });

    it('another project in the body → 404 project', async () => {
      expectError(await post('/api/v1/flow-runs/cancel', { projectId: 'proj_x' }), 404, 'ENTITY_NOT_FOUND', { entityType: 'project', entityId: 'proj_x' });
    });
  });

  describe('POST /api/v1/flow-runs/:id/requests/:requestId (resume)', () => {
    const resume = (runId: string, rid: string, body: unknown, sync: boolean) =>
      req('POST', `/api/v1/flow-runs/${runId}/requests/${rid}${sync ? '/sync' : ''}`, { key: null, body });

    it('/sync answers 200 with the step’s output, without an API key; the id cannot be used again', async () => {
      const paused = await started('approval', 'PAUSED');
      const rid = paused.pause!.requestId;
      const a = await resume(paused.id, rid, { approved: true, comment: 'Looks good!' }, true);
      expect(a.status).toBe(200);
      expect(a.body).toEqual({ runId: paused.id, stepName: 'approve', output: { approved: true, comment: 'Looks good!' } });
      const done = await run(paused.id, 'SUCCEEDED');
      expect(done.steps.after.output).toBe('comment: Looks good!');
      for (const sync of [true, false]) {
        expectError(await resume(paused.id, rid, {}, sync), 404, 'PAUSE_REQUEST_MISMATCH', { entityId: rid, reason: 'ALREADY_USED' });
      }
    });

    it('the async form answers 202 { accepted: true } and the run goes on', async () => {
      const paused = await started('approval', 'PAUSED');
      const a = await resume(paused.id, paused.pause!.requestId, { comment: 'later' }, false);
      expect(a).toMatchObject({ status: 202, body: { accepted: true } });
      expect((await run(paused.id, 'SUCCEEDED')).steps.after.output).toBe('comment: later');
    });

    it.each([true, false])('sync=%s: one 404 for an id the run did not issue, whatever the run (running, paused, unknown); 400 for an over-long id', async (sync) => {
      // The routes take no key: without an id the run issued, the answer says nothing of the run.
      const rid = requestId();
      const notIssued = { statusCode: 404, code: 'PAUSE_REQUEST_MISMATCH', params: { entityType: 'flow_run_request', entityId: rid } };
      const running = await started('slow', 'RUNNING');
      expect((await resume(running.id, rid, {}, sync)).body).toEqual(notIssued);
      const paused = await started('approval', 'PAUSED');
      expect((await resume(paused.id, rid, {}, sync)).body).toEqual(notIssued);
      expect((await resume('run_does_not_exist', rid, {}, sync)).body).toEqual(notIssued);
      expectError(await resume(paused.id, `req_${'a'.repeat(200)}`, {}, sync), 400, 'VALIDATION', { field: 'requestId' });
      // None of that touched the paused run.
      expect((await get(`/api/v1/flow-runs/${paused.id}`)).body).toMatchObject({ status: 'PAUSED', pause: { requestId: paused.pause!.requestId } });
      expect((await post('/api/v1/flow-runs/cancel', { flowRunIds: [running.id, paused.id] })).body).toEqual({ cancelled: 2 });
    });
  });

  describe('POST /api/v1/flows/:flowId/run', () => {
    it('answers 201 with the RUNNING run; any JSON is the payload, and no body is {}', async () => {
      const a = await post(`/api/v1/flows/${flows.ok}/run`, 'just a string');
      expect(a.status).toBe(201);
      expect(FlowRunSchema.strict().parse(a.body)).toEqual(a.body);
      expect(a.body).toMatchObject({ status: 'RUNNING', projectId: P, flowId: flows.ok, parentRunId: null, triggeredBy: keyId, attempt: 1 });
      expect((await run(a.body.id, 'SUCCEEDED')).steps.trigger.output).toBe('just a string');
      const none = await req('POST', `/api/v1/flows/${flows.ok}/run`);
      expect(none.status).toBe(201);
      expect((await run(none.body.id, 'SUCCEEDED')).steps.trigger.output).toEqual({});
    });

    it.each([
      ['null', null],
      ['a number', 42],
      ['an array', [1, 'two']],
      ['false', false],
    ])('a JSON %s is the payload as it is', async (_what, payload) => {
      const a = await req('POST', `/api/v1/flows/${flows.ok}/run`, { rawBody: JSON.stringify(payload) });
      expect(a.status).toBe(201);
      expect((await run(a.body.id, 'SUCCEEDED')).steps.trigger).toEqual({ type: 'TRIGGER', output: payload });
    });

    it('ap-fail-parent-on-failure: true fails the parent when the child fails; false leaves the parent alone', async () => {
      const [strictParent, lenientParent] = await Promise.all([started('approval', 'PAUSED'), started('approval', 'PAUSED')]);
      const strictChild = (await trigger(flows.fails, {}, { 'ap-parent-run-id': strictParent.id, 'ap-fail-parent-on-failure': 'true' })).id;
      const lenientChild = (await trigger(flows.fails, {}, { 'ap-parent-run-id': lenientParent.id, 'ap-fail-parent-on-failure': 'false' })).id;
      expect((await run(strictChild, 'FAILED')).parentRunId).toBe(strictParent.id);
      expect((await run(lenientChild, 'FAILED')).parentRunId).toBe(lenientParent.id);
      await run(strictParent.id, 'FAILED');
      expect((await get(`/api/v1/flow-runs/${lenientParent.id}`)).body.status).toBe('PAUSED');
      expect((await post('/api/v1/flow-runs/cancel', { flowRunIds: [lenientParent.id] })).body).toEqual({ cancelled: 1 });
    });

    it.each([
      ['an unknown parent', () => ({ 'ap-parent-run-id': 'run_missing' }), 404, 'ENTITY_NOT_FOUND', { entityType: 'flow_run', entityId: 'run_missing', field: 'ap-parent-run-id' }],
      ['a bad ap-fail-parent-on-failure', () => ({ 'ap-fail-parent-on-failure': 'maybe' }), 400, 'VALIDATION', { field: 'ap-fail-parent-on-failure' }],
    ] as const)('%s → its error envelope', async (_what, headers, status, code, params) => {
      expectError(await post(`/api/v1/flows/${flows.ok}/run`, {}, headers()), status, code, params);
    });

    it('an unknown flow → 404 flow', async () => {
      expectError(await post('/api/v1/flows/flow_missing/run', {}), 404, 'ENTITY_NOT_FOUND', { entityType: 'flow', entityId: 'flow_missing' });
    });
  });

  describe('flows', () => {
    it('create (201), list, get and publish a version (201) of a flow', async () => {
      const created = await post('/api/v1/flows', { projectId: P, displayName: 'Lifecycle', tags: ['t'], steps: [{ name: 'a', type: 'transform', settings: { value: 1 } }] });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ projectId: P, displayName: 'Lifecycle', tags: ['t'], version: { version: 1 } });
      const id = created.body.id as string;
      expect(((await get(`/api/v1/flows?projectId=${P}`)).body.data as { id: string }[]).map((f) => f.id)).toContain(id);
      expect((await get(`/api/v1/flows/${id}`)).body).toMatchObject({ id, version: { version: 1 } });
      const v2 = await post(`/api/v1/flows/${id}/versions`, { projectId: P, displayName: 'Lifecycle 2', steps: [{ name: 'b', type: 'transform', settings: { value: 2 } }] });
      expect(v2.status).toBe(201);
      expect((await get(`/api/v1/flows/${id}`)).body).toMatchObject({ version: { version: 2, steps: [{ name: 'b' }] } });
    });

    it.each([
      ['no displayName', { projectId: P, steps: [] }, 'displayName'],
      ['a step named trigger', { projectId: P, displayName: 'x', steps: [{ name: 'trigger', type: 'transform' }] }, 'steps.0.name'],
      ['a step name with a space', { projectId: P, displayName: 'x', steps: [{ name: 'a b', type: 'transform' }] }, 'steps.0.name'],
    ] as const)('create with %s → 400 VALIDATION naming the field', async (_what, body, field) => {
      expectError(await post('/api/v1/flows', body), 400, 'VALIDATION', { field });
    });

    it('an unknown flow → 404 on get and on publish', async () => {
      expectError(await get('/api/v1/flows/flow_missing'), 404, 'ENTITY_NOT_FOUND', { entityType: 'flow' });
      expectError(await post('/api/v1/flows/flow_missing/versions', { steps: [] }), 404, 'ENTITY_NOT_FOUND', { entityType: 'flow' });
    });
  });

  describe('bodies and routes', () => {
    it.each([
      ['POST', '/api/v1/flows'],
      ['POST', '/api/v1/flow-runs/cancel'],
      ['POST', '/api/v1/flow-runs/retry'],
      ['POST', '/api/v1/flow-runs/archive'],
      ['POST', '/api/v1/flow-runs/run_x/retry'],
      ['POST', '/api/v1/flow-runs/run_x/requests/req_x/sync'],
    ])('malformed JSON to %s %s → 400 VALIDATION naming the body', async (method, p) => {
      const a = await req(method, p, { rawBody: '{"projectId": "proj_contract",' });
      expectError(a, 400, 'VALIDATION', { field: 'body' });
    });

    it.each([
      ['POST', () => `/api/v1/flows/${flows.ok}/run`],
      ['POST', () => '/api/v1/flow-runs/cancel'],
      ['POST', () => '/api/v1/flow-runs/run_x/requests/req_x/sync'],
    ])('a body over the limit (%s #%#) → 413 PAYLOAD_TOO_LARGE', async (method, p) => {
      const big = JSON.stringify({ blob: 'x'.repeat(2 * 1024 * 1024) });
      expectError(await req(method, p(), { rawBody: big }), 413, 'PAYLOAD_TOO_LARGE', { field: 'body' });
    });

    it.each([
      ['GET', '/api/v1/nope'],
      ['GET', '/api/v1/flow-runs/run_x/steps'],
      ['POST', '/api/v1/flow-runs/run_x/whatever'],
      ['DELETE', '/api/v1/flow-runs/run_x'],
      ['PUT', '/api/v1/flows'],
      ['GET', '/'],
    ])('%s %s → 404 ENTITY_NOT_FOUND route in the envelope', async (method, p) => {
      expectError(await req(method, p), 404, 'ENTITY_NOT_FOUND', { entityType: 'route', entityId: `${method} ${p}` });
    });
  });

  // Bulk retry and archive last: they were built alongside this suite.
  describe('POST /api/v1/flow-runs/retry (bulk)', () => {
    it('by ids, FROM_FAILED_STEP: retries the failed ones only; at the attempt limit they count 0', async () => {
      const [f1, f2, ok] = await Promise.all([started('broken', 'FAILED'), started('broken', 'FAILED'), started('ok', 'SUCCEEDED')]);
      const body = { strategy: 'FROM_FAILED_STEP', flowRunIds: [f1.id, f2.id, ok.id, 'run_unknown'] };
      expect(await post('/api/v1/flow-runs/retry', body)).toMatchObject({ status: 200, body: { retried: 2 } });
      for (const f of [f1, f2]) await run(f.id, (r) => r.status === 'FAILED' && r.attempt === 2);
      expect((await get(`/api/v1/flow-runs/${ok.id}`)).body).toMatchObject({ status: 'SUCCEEDED', attempt: 1 });
      // Attempt 2 of 2: nothing left to retry, nothing counted.
      expect(await post('/api/v1/flow-runs/retry', body)).toMatchObject({ status: 200, body: { retried: 0 } });
    });

    it('by filter, ON_LATEST_VERSION: flowId + status + excludeFlowRunIds; new runs point at their originals', async () => {
      const flowId = await createFlow('Bulk retry by filter', [{ name: 'boom', type: 'fail', settings: { message: 'x' } }]);
      const originals: string[] = [];
      for (let i = 0; i < 3; i++) originals.push((await trigger(flowId)).id);
      for (const id of originals) await run(id, 'FAILED');
      const [g1, g2, g3] = originals;
      expect((await post('/api/v1/flow-runs/retry', { strategy: 'ON_LATEST_VERSION', flowId, failedStepName: 'other' })).body).toEqual({ retried: 0 });
      expect((await post('/api/v1/flow-runs/retry', { strategy: 'ON_LATEST_VERSION', flowId, status: ['SUCCEEDED'] })).body).toEqual({ retried: 0 });
      const a = await post('/api/v1/flow-runs/retry', { strategy: 'ON_LATEST_VERSION', flowId, status: ['FAILED'], failedStepName: 'boom', excludeFlowRunIds: [g3] });
      expect(a).toMatchObject({ status: 200, body: { retried: 2 } });
      const retries = await waitFor(
        async () => {
          const list = (await get(`/api/v1/flow-runs?projectId=${P}&flowId=${flowId}&limit=100`)).body.data as FlowRun[];
          const r = list.filter((x) => x.retryOf !== null);
          return r.length >= 2 ? r : undefined;
        },
        { timeoutMs: 30_000, what: 'the two retries to show' },
      );
      expect(retries.map((r) => r.retryOf).sort()).toEqual([g1, g2].sort());
    });

    it('by ids: the other filters are ignored', async () => {
      const failed = await started('fails', 'FAILED');
      const a = await post('/api/v1/flow-runs/retry', { strategy: 'FROM_FAILED_STEP', flowRunIds: [failed.id], flowId: flows.ok, status: ['SUCCEEDED'] });
      expect(a.body).toEqual({ retried: 1 });
      await run(failed.id, (r) => r.attempt === 2 && r.status === 'FAILED');
    });

    it.each([
      ['no strategy', { flowRunIds: ['run_x'] }, 'strategy'],
      ['an unknown strategy', { strategy: 'NOW', flowRunIds: ['run_x'] }, 'strategy'],
      ['a misspelt filter', { strategy: 'FROM_FAILED_STEP', flowIds: ['x'] }, 'flowIds'],
      ['an unknown status', { strategy: 'FROM_FAILED_STEP', status: ['BROKEN'] }, 'status'],
      ['no body', undefined, 'body'],
    ] as const)('%s → 400 VALIDATION naming the field', async (_what, body, field) => {
      const a = await post('/api/v1/flow-runs/retry', body);
      expectError(a, 400, 'VALIDATION');
      expect(String(a.body.params.field)).toMatch(new RegExp(`^${field}`));
    });

    it('another project in the body → 404 project', async () => {
      expectError(await post('/api/v1/flow-runs/retry', { projectId: 'proj_x', strategy: 'FROM_FAILED_STEP' }), 404, 'ENTITY_NOT_FOUND', { entityType: 'project', entityId: 'proj_x' });
    });
  });

  describe('POST /api/v1/flow-runs/archive (bulk)', () => {
    let flowId: string;
    let runs: FlowRun[];
    const listIds = async (includeArchived: boolean) =>
      ((await get(`/api/v1/flow-runs?projectId=${P}&flowId=${flowId}&limit=100&includeArchived=${includeArchived}`)).body.data as FlowRun[]).map((r) => r.id).sort();

    beforeAll(async () => {
      flowId = await createFlow('Archive', [{ name: 'a', type: 'transform', settings: { value: 1 } }]);
      runs = [];
      for (let i = 0; i < 4; i++) runs.push(await run((await trigger(flowId)).id, 'SUCCEEDED'));
    });

    it('by ids: archives them, a second identical request counts 0; they leave the default list and return with includeArchived=true', async () => {
      const [a1, a2] = runs;
      const body = { flowRunIds: [a1.id, a2.id, 'run_unknown'] };
      expect(await post('/api/v1/flow-runs/archive', body)).toMatchObject({ status: 200, body: { archived: 2 } });
      for (const r of [a1, a2]) await run(r.id, (x) => x.archivedAt !== null);
      expect(await post('/api/v1/flow-runs/archive', body)).toMatchObject({ status: 200, body: { archived: 0 } });
      expect(await listIds(false)).toEqual([runs[2].id, runs[3].id].sort());
      expect(await listIds(true)).toEqual(runs.map((r) => r.id).sort());
      // Still readable one by one, and its status is untouched.
      expect((await get(`/api/v1/flow-runs/${a1.id}`)).body).toMatchObject({ status: 'SUCCEEDED', archivedAt: expect.any(String) });
    });

    it('an archived run cannot be retried: 409 RUN_ARCHIVED', async () => {
      expectError(await post(`/api/v1/flow-runs/${runs[0].id}/retry`, { strategy: 'ON_LATEST_VERSION', projectId: P }), 409, 'RUN_ARCHIVED', { entityId: runs[0].id });
    });

    it('by filter: status and excludeFlowRunIds, counting only runs not archived before', async () => {
      const [, , a3, a4] = runs;
      expect((await post('/api/v1/flow-runs/archive', { flowId, status: ['FAILED'] })).body).toEqual({ archived: 0 });
      expect((await post('/api/v1/flow-runs/archive', { flowId, excludeFlowRunIds: [a3.id] })).body).toEqual({ archived: 1 });
      await run(a4.id, (x) => x.archivedAt !== null);
      expect(await listIds(false)).toEqual([a3.id]);
    });

    it('by ids: the other filters are ignored', async () => {
      const a3 = runs[2];
      expect((await post('/api/v1/flow-runs/archive', { flowRunIds: [a3.id], flowId: flows.ok, status: ['FAILED'] })).body).toEqual({ archived: 1 });
      await run(a3.id, (x) => x.archivedAt !== null);
      expect(await listIds(false)).toEqual([]);
      expect(await listIds(true)).toHaveLength(4);
    });

    it.each([
      ['a strategy (not an archive field)', { strategy: 'FROM_FAILED_STEP' }, 'strategy'],
      ['a misspelt filter', { flow_id: 'x' }, 'flow_id'],
      ['a bad timestamp', { createdBefore: '2024-13-01T00:00:00Z' }, 'createdBefore'],
      ['no body', undefined, 'body'],
    ] as const)('%s → 400 VALIDATION naming the field', async (_what, body, field) => {
      const a = await post('/api/v1/flow-runs/archive', body);
      expectError(a, 400, 'VALIDATION');
      expect(String(a.body.params.field)).toMatch(new RegExp(`^${field}`));
    });

    it('another project in the body → 404 project', async () => {
      expectError(await post('/api/v1/flow-runs/archive', { projectId: 'proj_x' }), 404, 'ENTITY_NOT_FOUND', { entityType: 'project', entityId: 'proj_x' });
    });
  });

  afterAll(() => {
    // Every request above passed the envelope check as it was answered; make sure there were many.
    expect(answers).toBeGreaterThan(150);
  });
});
