import { Client } from 'pg';
import { newApiKey, gatewayClient, startTarget } from './client';
import { startSystem } from './harness';

/** Timeouts and worker failures: no run is left RUNNING forever, no reported step runs twice. */
describe('engine under time limits and worker failures', () => {
  let target: Awaited<ReturnType<typeof startTarget>>;

  beforeAll(async () => {
    target = await startTarget();
  });
  afterAll(async () => {
    await target?.close();
  });

  const setup = async (extraEnv: Record<string, string>, apps = ['command-service', 'projector', 'api-gateway', 'flow-worker']) => {
    const system = await startSystem(apps, extraEnv);
    const projectId = 'proj_faults';
    const api = gatewayClient(system.apps['api-gateway'].url, (await newApiKey(system.db.url, projectId)).key);
    const flow = async (steps: unknown[]) => {
      const r = await api.post('/api/v1/flows', { projectId, displayName: 'f', steps });
      expect(r.status).toBe(201);
      return r.body.id as string;
    };
    const run = async (flowId: string, payload: unknown = {}) => {
      const r = await api.post(`/api/v1/flows/${flowId}/run`, payload);
      expect(r.status).toBe(201);
      return r.body.id as string;
    };
    return { system, api, flow, run };
  };

  it('times out a run past the maximum execution time, and a pause past the maximum pause time', async () => {
    const { system, api, flow, run } = await setup({ AP_FLOW_TIMEOUT_SECONDS: '2', AP_PAUSE_TIMEOUT_SECONDS: '2', SUPERVISOR_INTERVAL_MS: '200' });
    try {
      const slow = await run(await flow([{ name: 'wait', type: 'delay', settings: { ms: 6000 } }]));
      const waiting = await run(await flow([{ name: 'approve', type: 'approval', settings: {} }]));
      await api.waitForRun(waiting, 'PAUSED');
      await api.waitForRun(slow, 'TIMEOUT', 20000);
      await api.waitForRun(waiting, 'TIMEOUT', 20000);
    } finally {
      await system.stop();
    }
  });

  it('with two workers, a worker killed mid-run is taken over; no reported step runs twice', async () => {
    const { system, api, flow, run } = await setup({ FLOW_WORKER_LEASE_TTL_MS: '3000' });
    const second = await system.add('flow-worker');
    try {
      // Many runs over two workers: each step's target is called exactly once.
      const fan = await flow([{ name: 'call', type: 'http', settings: { method: 'POST', url: `${target.url}/fan/{{trigger.i}}` } }]);
      const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => run(fan, { i })));
      for (const id of ids) await api.waitForRun(id, 'SUCCEEDED');
      for (let i = 0; i < 12; i++) expect(target.count(`/fan/${i}`)).toBe(1);

      // A run whose worker dies during its delay: the other worker claims the expired lease.
      const flowId = await flow([
        { name: 'a', type: 'http', settings: { method: 'POST', url: `${target.url}/kill/a` } },
        { name: 'wait', type: 'delay', settings: { ms: 1500 } },
        { name: 'b', type: 'http', settings: { method: 'POST', url: `${target.url}/kill/b` } },
      ]);
      const runId = await run(flowId);
      await api.waitForRun(runId, (r) => r.steps.a?.status === 'SUCCEEDED' && r.steps.wait?.status === 'RUNNING');
      const pg = new Client({ connectionString: system.db.url });
      await pg.connect();
      const holder = (await pg.query('select worker_id from run_leases where run_id = $1', [runId])).rows[0]?.worker_id as string;
      await pg.end();
      const workers = [system.apps['flow-worker'], second];
      const victim = workers.find((w) => holder?.includes(String(w.process.pid)));
      expect(victim).toBeDefined();
      await victim!.stop('SIGKILL');

      const done = await api.waitForRun(runId, 'SUCCEEDED', 40000);
      expect(done.steps.b.status).toBe('SUCCEEDED');
      expect(target.count('/kill/a')).toBe(1);
      expect(target.count('/kill/b')).toBe(1);
    } finally {
      await system.stop();
    }
  });
});
