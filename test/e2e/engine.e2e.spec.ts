import type { FlowRunWithSteps } from '@flowruns/contracts';
import { waitFor } from '@flowruns/testing';
import { Client } from 'pg';
import { newApiKey, gatewayClient, startTarget } from './client';
import { startSystem } from './harness';

/**
 * The engine end to end: flows created over the public API run on a real flow worker, steps call a
 * local HTTP target, and everything is checked through the public API.
 */
describe('the flow engine, end to end', () => {
  let system: Awaited<ReturnType<typeof startSystem>>;
  let api: ReturnType<typeof gatewayClient>;
  let target: Awaited<ReturnType<typeof startTarget>>;
  const projectId = 'proj_engine';
  let flaky = 0;

  beforeAll(async () => {
    target = await startTarget((req, body) => {
      if (req.url === '/customers/42') return { status: 200, body: { id: 42, name: 'Ada' } };
      if (req.url === '/flaky') return ++flaky === 1 ? { status: 503, body: { error: 'try later' } } : { status: 200, body: { ok: 'second time' } };
      if (req.url === '/broken') return { status: 500, body: { error: 'always' } };
      return { status: 200, body: { echo: body ? JSON.parse(body) : null, path: req.url } };
    });
    system = await startSystem(['command-service', 'projector', 'api-gateway', 'flow-worker']);
    api = gatewayClient(system.apps['api-gateway'].url, (await newApiKey(system.db.url, projectId)).key);
  });

  afterAll(async () => {
    await system?.stop();
    await target?.close();
  });

  const createFlow = async (displayName: string, steps: unknown[]) => {
    const r = await api.post('/api/v1/flows', { projectId, displayName, steps });
    expect({ status: r.status, body: r.status === 201 ? 'ok' : r.body }).toEqual({ status: 201, body: 'ok' });
    return r.body.id as string;
  };
  const trigger = async (flowId: string, payload: unknown, headers?: Record<string, string>) => {
    const r = await api.post(`/api/v1/flows/${flowId}/run`, payload, headers);
    expect({ status: r.status, body: r.status === 201 ? 'ok' : r.body }).toEqual({ status: 201, body: 'ok' });
    return r.body.id as string;
  };

  it('runs http, transform and delay steps with templates to SUCCEEDED', async () => {
    const flowId = await createFlow('Templates', [
      { name: 'fetch', type: 'http', settings: { method: 'GET', url: `${target.url}/customers/{{trigger.customerId}}` } },
      {
        name: 'shape',
        type: 'transform',
        settings: { value: { name: '{{steps.fetch.output.body.name}}', greeting: 'Hello {{steps.fetch.output.body.name}}!', id: '{{trigger.customerId}}' } },
      },
      { name: 'wait', type: 'delay', settings: { ms: 50 } },
      { name: 'notify', type: 'http', settings: { method: 'POST', url: `${target.url}/notify`, body: '{{steps.shape.output}}' } },
    ]);
    const runId = await trigger(flowId, { customerId: 42 });
    const run = await api.waitForRun(runId, 'SUCCEEDED');
    expect(run.steps.fetch).toMatchObject({ status: 'SUCCEEDED', output: { status: 200, body: { id: 42, name: 'Ada' } } });
    expect(run.steps.shape.output).toEqual({ name: 'Ada', greeting: 'Hello Ada!', id: 42 });
    expect(run.steps.wait.status).toBe('SUCCEEDED');
    expect(run.steps.notify.output).toMatchObject({ status: 200, body: { echo: { name: 'Ada', greeting: 'Hello Ada!', id: 42 } } });
    for (const s of ['fetch', 'shape', 'wait', 'notify']) expect(typeof run.steps[s].duration).toBe('number');
  });

  it('fails a run at its failing step, and FROM_FAILED_STEP resumes it there without calling earlier steps again', async () => {
    const flowId = await createFlow('Flaky', [
      { name: 'first', type: 'http', settings: { method: 'POST', url: `${target.url}/first-once` } },
      { name: 'flaky', type: 'http', settings: { method: 'GET', url: `${target.url}/flaky` } },
    ]);
    const runId = await trigger(flowId, {});
    const failed = await api.waitForRun(runId, 'FAILED');
    expect(failed.failedStepName).toBe('flaky');
    expect(failed.steps.flaky).toMatchObject({ status: 'FAILED', error: expect.objectContaining({ status: 503 }) });

    const retry = await api.post(`/api/v1/flow-runs/${runId}/retry`, { strategy: 'FROM_FAILED_STEP', projectId });
    expect(retry.status).toBeLessThan(300);
    expect(retry.body.id).toBe(runId);
    const done = await api.waitForRun(runId, (r) => r.status === 'SUCCEEDED' && r.attempt === 2);
    expect(done.steps.flaky.output).toMatchObject({ status: 200, body: { ok: 'second time' } });
    expect(target.count('/first-once')).toBe(1);
  });

  it('retries ON_LATEST_VERSION as a new run of the newest version with the original payload', async () => {
    const flowId = await createFlow('Versioned', [{ name: 'boom', type: 'fail', settings: { message: 'v1 is broken' } }]);
    const runId = await trigger(flowId, { x: 'original payload' });
    const failed = await api.waitForRun(runId, 'FAILED');
    expect(failed.steps.boom.error).toMatchObject({ message: 'v1 is broken' });
    const v2 = await api.post(`/api/v1/flows/${flowId}/versions`, { steps: [{ name: 'fixed', type: 'transform', settings: { value: '{{trigger.x}}' } }] });
    expect(v2.status).toBeLessThan(300);

    const retry = await api.post(`/api/v1/flow-runs/${runId}/retry`, { strategy: 'ON_LATEST_VERSION', projectId });
    expect(retry.status).toBeLessThan(300);
    const newId = retry.body.id as string;
    expect(newId).not.toBe(runId);
    const done = await api.waitForRun(newId, 'SUCCEEDED');
    expect(done.retryOf).toBe(runId);
    expect(done.flowVersionId).toBe((v2.body.version as { id: string }).id);
    expect(done.steps.fixed.output).toBe('original payload');
    expect((await api.get(`/api/v1/flow-runs/${runId}`)).body.status).toBe('FAILED');
  });

  it('pauses at an approval and resumes with the human input over the sync endpoint, without an API key', async () => {
    const flowId = await createFlow('Approval', [
      { name: 'approve', type: 'approval', settings: {} },
      { name: 'after', type: 'transform', settings: { value: 'comment: {{steps.approve.output.comment}}' } },
    ]);
    const runId = await trigger(flowId, {});
    const paused = await api.waitForRun(runId, 'PAUSED');
    const requestId = paused.pause?.requestId;
    expect(requestId).toEqual(expect.any(String));

    const resume = await fetch(`${system.apps['api-gateway'].url}/api/v1/flow-runs/${runId}/requests/${requestId}/sync`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ approved: true, comment: 'Looks good!' }),
    });
    expect(resume.status).toBe(200);
    expect(await resume.json()).toMatchObject({ output: { approved: true, comment: 'Looks good!' } });
    const done = await api.waitForRun(runId, 'SUCCEEDED');
    expect(done.steps.approve.output).toEqual({ approved: true, comment: 'Looks good!' });
    expect(done.steps.after.output).toBe('comment: Looks good!');

    const again = await fetch(`${system.apps['api-gateway'].url}/api/v1/flow-runs/${runId}/requests/${requestId}/sync`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect([404, 409]).toContain(again.status);
  });

  it('fails a parent whose subflow child fails when asked to, and not otherwise', async () => {
    const childFlow = await createFlow('Child', [{ name: 'nope', type: 'fail', settings: { message: 'child failed' } }]);
    const strict = await createFlow('Strict parent', [
      { name: 'call_child', type: 'subflow', settings: { flowId: childFlow, payload: { from: 'parent' }, failParentOnFailure: true } },
      { name: 'never', type: 'http', settings: { method: 'GET', url: `${target.url}/never` } },
    ]);
    const lenient = await createFlow('Lenient parent', [
      { name: 'call_child', type: 'subflow', settings: { flowId: childFlow, failParentOnFailure: false } },
      { name: 'then', type: 'transform', settings: { value: '{{steps.call_child.output.status}}' } },
    ]);
    const strictRun = await trigger(strict, {});
    const lenientRun = await trigger(lenient, {});
    const s = await api.waitForRun(strictRun, 'FAILED');
    expect(s.failedStepName).toBe('call_child');
    const l = await api.waitForRun(lenientRun, 'SUCCEEDED');
    expect(l.steps.then.output).toBe('FAILED');
    expect(target.count('/never')).toBe(0);

    const children = await api.get(`/api/v1/flow-runs?projectId=${projectId}&flowId=${childFlow}&limit=10`);
    const parents = (children.body.data as { parentRunId: string }[]).map((c) => c.parentRunId).sort();
    expect(parents).toEqual([strictRun, lenientRun].sort());
  });

  it('stops a run cancelled during a delay; the step after it never runs', async () => {
    const flowId = await createFlow('Cancellable', [
      { name: 'wait', type: 'delay', settings: { ms: 2000 } },
      { name: 'after', type: 'http', settings: { method: 'GET', url: `${target.url}/after-cancel` } },
    ]);
    const runId = await trigger(flowId, {});
    await api.waitForRun(runId, (r) => r.steps.wait?.status === 'RUNNING');
    const cancel = await api.post('/api/v1/flow-runs/cancel', { flowRunIds: [runId] });
    expect(cancel).toEqual({ status: 200, body: { cancelled: 1 } });
    await api.waitForRun(runId, 'STOPPED');
    // The worker finds out at the step boundary: its report for the delay is refused, so the
    // delay never shows as finished and the next step never starts.
    await waitFor(async () => {
      const r = (await api.get(`/api/v1/flow-runs/${runId}`)).body as unknown as FlowRunWithSteps;
      return r.status === 'STOPPED' && r.steps.after === undefined;
    });
    expect(target.count('/after-cancel')).toBe(0);
  });

  it('records a run past the project quota as QUOTA_EXCEEDED', async () => {
    const quotaProject = 'proj_quota';
    const pg = new Client({ connectionString: system.db.url });
    await pg.connect();
    await pg.query('insert into projects (id, monthly_run_quota) values ($1, 1) on conflict (id) do update set monthly_run_quota = 1', [quotaProject]);
    await pg.end();
    const quotaApi = gatewayClient(system.apps['api-gateway'].url, (await newApiKey(system.db.url, quotaProject)).key);
    const flow = await quotaApi.post('/api/v1/flows', {
      projectId: quotaProject,
      displayName: 'Quota',
      steps: [{ name: 'x', type: 'transform', settings: { value: 1 } }],
    });
    const first = await quotaApi.post(`/api/v1/flows/${flow.body.id}/run`, {});
    const second = await quotaApi.post(`/api/v1/flows/${flow.body.id}/run`, {});
    expect(first.status).toBe(201);
    await quotaApi.waitForRun(first.body.id as string, 'SUCCEEDED');
    expect([201, 429]).toContain(second.status);
    const secondId = (second.body.id ?? (second.body.params as { entityId?: string })?.entityId) as string;
    await quotaApi.waitForRun(secondId, 'QUOTA_EXCEEDED');
  });
});
