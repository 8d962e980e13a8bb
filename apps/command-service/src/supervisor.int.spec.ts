import { uniqueName, waitFor } from '@flowruns/testing';
import { startCommandService, type TestCommandService } from './app.spec-helpers';

/**
 * The supervisor as the app runs it (on its interval), with tiny configured timeouts: runs that
 * nobody ends end as TIMEOUT with the reason that applies, and a child's timeout fails its parent.
 */
describe('command service supervisor (tiny timeouts, real Postgres + Kafka)', () => {
  let svc: TestCommandService;
  const projectId = uniqueName('p_sup');

  beforeAll(async () => {
    svc = await startCommandService({
      SUPERVISOR_INTERVAL_MS: '100',
      AP_FLOW_TIMEOUT_SECONDS: '3',
      AP_ORPHAN_RUN_SECONDS: '1',
      AP_PAUSE_TIMEOUT_SECONDS: '1',
    });
  });
  afterAll(async () => {
    await svc?.close();
  });

  const flow = async () =>
    (await svc.call('POST', '/internal/flows', { projectId, displayName: 'f', steps: [{ name: 'a', type: 'approval' }] })).body as { id: string };
  const trigger = async (flowId: string, extra: Record<string, unknown> = {}) =>
    (await svc.call('POST', `/internal/flows/${flowId}/runs`, { projectId, payload: {}, ...extra })).body as { id: string };
  const timedOut = async (runId: string) => {
    const r = await svc.call<{ status: string }>('GET', `/internal/runs/${runId}/execution`);
    return r.body.status === 'TIMEOUT' ? r.body : undefined;
  };
  const reason = async (runId: string): Promise<string | undefined> => {
    const { Client } = await import('pg');
    const c = new Client({ connectionString: svc.databaseUrl });
    await c.connect();
    try {
      const r = await c.query(`select envelope->'data'->>'reason' as reason from run_events where run_id = $1 and type = 'flowrun.timed-out.v1'`, [runId]);
      return r.rows[0]?.reason;
    } finally {
      await c.end();
    }
  };

  it('times out a run nobody picked up (WORKER_LOST), and fails its parent that asked for it', async () => {
    const f = await flow();
    const parent = await trigger(f.id);
    // The parent is kept alive by its worker's lease; the child never gets one.
    const lease = () => svc.call('POST', `/internal/runs/${parent.id}/lease`, { workerId: 'w1', ttlMs: 60000 });
    await lease();
    const child = await trigger(f.id, { parentRunId: parent.id, failParentOnFailure: true });
    await waitFor(() => timedOut(child.id), { what: 'the orphaned child timed out', timeoutMs: 15000 });
    expect(await reason(child.id)).toBe('WORKER_LOST');
    const p = await svc.call<{ status: string }>('GET', `/internal/runs/${parent.id}/execution`);
    expect(p.body.status).toBe('FAILED');
  });

  it('times out a leased run past the flow timeout (EXECUTION_TIME)', async () => {
    const f = await flow();
    const run = await trigger(f.id);
    expect((await svc.call<{ acquired: boolean }>('POST', `/internal/runs/${run.id}/lease`, { workerId: 'w1', ttlMs: 60000 })).body.acquired).toBe(true);
    await waitFor(() => timedOut(run.id), { what: 'the run timed out', timeoutMs: 15000 });
    expect(await reason(run.id)).toBe('EXECUTION_TIME');
  });

  it('times out a paused run at its default deadline (AP_PAUSE_TIMEOUT_SECONDS), and the request id is then expired', async () => {
    const f = await flow();
    const run = await trigger(f.id);
    await svc.call('POST', `/internal/runs/${run.id}/steps/a/start`, { stepType: 'approval' });
    const paused = await svc.call<{ requestId: string }>('POST', `/internal/runs/${run.id}/pause`, { stepName: 'a' });
    expect(paused.status).toBe(200);
    await waitFor(() => timedOut(run.id), { what: 'the paused run timed out', timeoutMs: 15000 });
    expect(await reason(run.id)).toBe('PAUSE_TIME');
    expect(await svc.call('POST', `/internal/runs/${run.id}/resume`, { requestId: paused.body.requestId, body: {} })).toMatchObject({
      status: 410,
      body: { code: 'PAUSE_EXPIRED' },
    });
  });
});
