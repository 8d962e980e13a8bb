import { waitFor } from '@flowruns/testing';
import { Client } from 'pg';
import { gatewayClient, httpRequest, newApiKey, type HttpAnswer } from './client';
import { startSystem } from './harness';

/**
 * A resume request id is a capability with two limits, both over the public, keyless resume routes
 * (`POST /api/v1/flow-runs/:id/requests/:requestId[/sync]`): it is single-use, and it expires at the
 * pause's deadline, which AP_PAUSE_TIMEOUT_SECONDS sets (seconds here, a day by default). An expired
 * id answers 410 PAUSE_EXPIRED — not 404 — whether or not the supervisor has yet timed the run out,
 * and the refusal changes nothing.
 */

const projectId = 'proj_resume';
const steps = [
  { name: 'approve', type: 'approval', settings: {} },
  { name: 'after', type: 'transform', settings: { value: 'approved: {{steps.approve.output.approved}}' } },
];

async function setup(env: Record<string, string>) {
  const system = await startSystem(['command-service', 'projector', 'api-gateway', 'flow-worker'], env);
  const url = system.apps['api-gateway'].url;
  const api = gatewayClient(url, (await newApiKey(system.db.url, projectId)).key);
  const flow = await api.post('/api/v1/flows', { projectId, displayName: 'Needs approval', steps });
  expect(flow.status).toBe(201);
  const db = new Client({ connectionString: system.db.url });
  await db.connect();
  const paused = async () => {
    const r = await api.post(`/api/v1/flows/${flow.body.id as string}/run`, {});
    expect(r.status).toBe(201);
    const run = await api.waitForRun(r.body.id as string, 'PAUSED');
    return { runId: run.id, requestId: run.pause!.requestId };
  };
  /** Without an API key, as whoever holds the approval link calls it. */
  const resume = (runId: string, requestId: string, sync: boolean, body: unknown = { approved: true }): Promise<HttpAnswer> =>
    httpRequest(url, 'POST', `/api/v1/flow-runs/${runId}/requests/${requestId}${sync ? '/sync' : ''}`, { key: null, body });
  /** What the write model holds of a run: a refused resume must leave all of it as it was. */
  const stored = async (runId: string) => {
    const r = await db.query(
      `select s.version, s.status, s.resume_deadline,
              (select count(*)::int from run_events e where e.run_id = s.run_id) as events,
              (select count(*)::int from execution_data d where d.run_id = s.run_id) as data
       from run_streams s where s.run_id = $1`,
      [runId],
    );
    return r.rows[0] as { version: number; status: string; resume_deadline: Date | null; events: number; data: number };
  };
  return {
    api,
    paused,
    resume,
    stored,
    async stop() {
      await db.end();
      await system.stop();
    },
  };
}

describe('resume request ids over HTTP: single-use, and expired at AP_PAUSE_TIMEOUT_SECONDS', () => {
  describe('deadline rule only (the supervisor never ticks during the test)', () => {
    let sys: Awaited<ReturnType<typeof setup>>;
    beforeAll(async () => {
      // SUPERVISOR_INTERVAL_MS at its maximum: no run is timed out, so only the run's own deadline
      // can refuse the late resume below.
      sys = await setup({ AP_PAUSE_TIMEOUT_SECONDS: '4', SUPERVISOR_INTERVAL_MS: '3600000' });
    });
    afterAll(async () => {
      await sys?.stop();
    });

    it('an id used once answers 404 ALREADY_USED on both routes, and still does after its deadline', async () => {
      const { runId, requestId } = await sys.paused();
      // Its deadline, recorded when it paused: past it, a used id must still answer "used", not "expired".
      const pausedUntil = (await sys.stored(runId)).resume_deadline;
      expect(pausedUntil).not.toBeNull();
      const first = await sys.resume(runId, requestId, true);
      expect({ status: first.status, body: first.body }).toEqual({ status: 200, body: { runId, stepName: 'approve', output: { approved: true } } });
      const done = await sys.api.waitForRun(runId, 'SUCCEEDED');
      expect(done.steps.after.output).toBe('approved: true');
      const after = await sys.stored(runId);

      const again = async () => {
        for (const sync of [true, false]) {
          const a = await sys.resume(runId, requestId, sync, { approved: false });
          expect({ sync, status: a.status, body: a.body }).toEqual({
            sync,
            status: 404,
            body: { statusCode: 404, code: 'PAUSE_REQUEST_MISMATCH', params: { entityType: 'flow_run_request', entityId: requestId, reason: 'ALREADY_USED' } },
          });
        }
      };
      await again();
      await waitFor(() => Date.now() > pausedUntil!.getTime() + 200, { timeoutMs: 10000, what: 'the used id’s deadline to pass' });
      await again();
      expect(await sys.stored(runId)).toEqual(after);
      expect((await sys.api.get(`/api/v1/flow-runs/${runId}`)).body).toMatchObject({ status: 'SUCCEEDED', steps: { approve: { output: { approved: true } } } });
    });

    it('an unused id past its deadline answers 410 PAUSE_EXPIRED naming the deadline on both routes, and the run is untouched', async () => {
      const { runId, requestId } = await sys.paused();
      const before = await sys.stored(runId);
      expect(before.status).toBe('PAUSED');
      // The deadline the command service recorded: pause time + AP_PAUSE_TIMEOUT_SECONDS.
      const deadline = before.resume_deadline!;
      expect(deadline.getTime() - Date.now()).toBeLessThanOrEqual(4000);
      await waitFor(() => Date.now() > deadline.getTime() + 200, { timeoutMs: 10000, what: 'the pause deadline to pass' });

      for (const sync of [true, false]) {
        const a = await sys.resume(runId, requestId, sync);
        expect({ sync, status: a.status, body: a.body }).toEqual({
          sync,
          status: 410,
          body: {
            statusCode: 410,
            code: 'PAUSE_EXPIRED',
            params: { entityType: 'flow_run_request', entityId: requestId, resumeDeadline: deadline.toISOString(), message: 'the resume request expired' },
          },
        });
      }
      // Refused, not half-done: no event, no stored resume body; the view still waits on the same id.
      expect(await sys.stored(runId)).toEqual(before);
      expect((await sys.api.get(`/api/v1/flow-runs/${runId}`)).body).toMatchObject({ status: 'PAUSED', pause: { requestId, stepName: 'approve' } });
    });
  });

  describe('the supervisor times the paused run out', () => {
    let sys: Awaited<ReturnType<typeof setup>>;
    beforeAll(async () => {
      sys = await setup({ AP_PAUSE_TIMEOUT_SECONDS: '2', SUPERVISOR_INTERVAL_MS: '200' });
    });
    afterAll(async () => {
      await sys?.stop();
    });

    it('the run ends TIMEOUT, and its id then answers 410 PAUSE_EXPIRED on both routes, changing nothing', async () => {
      const { runId, requestId } = await sys.paused();
      const timedOut = await sys.api.waitForRun(runId, 'TIMEOUT', 20000);
      expect(timedOut.pause).toBeNull();
      const before = await sys.stored(runId);
      for (const sync of [true, false]) {
        const a = await sys.resume(runId, requestId, sync);
        expect({ sync, status: a.status, code: a.body?.code, entityId: a.body?.params?.entityId }).toEqual({
          sync,
          status: 410,
          code: 'PAUSE_EXPIRED',
          entityId: requestId,
        });
      }
      expect(await sys.stored(runId)).toEqual(before);
      expect((await sys.api.get(`/api/v1/flow-runs/${runId}`)).body).toMatchObject({ status: 'TIMEOUT', pause: null });
    });
  });
});
