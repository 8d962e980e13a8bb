import { randomBytes, randomUUID } from 'node:crypto';
import { waitFor } from '@flowruns/testing';
import { Client } from 'pg';
import { gatewayClient, httpRequest, newApiKey, type HttpAnswer } from './client';
import { startSystem } from './harness';

/**
 * A resume request id is a capability with two limits, both over the public, keyless resume routes
 * (`POST /api/v1/flow-runs/:id/requests/:requestId[/sync]`): it is single-use, and it expires at the
 * pause's deadline, which AP_PAUSE_TIMEOUT_SECONDS sets (seconds here, a day by default). An expired
 * id answers 410 PAUSE_EXPIRED — not 404 — whether or not the supervisor has yet timed the run out,
 * and the refusal changes nothing. Without an id the run issued, a caller learns nothing of the run:
 * one and the same 404 whether it does not exist, has finished or waits on another id.
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
  /** What the write model holds of a run (nothing for one that does not exist): a refused resume must leave all of it as it was. */
  const stored = async (runId: string) => {
    const r = await db.query(
      `select s.version, s.status, s.resume_deadline,
              (select count(*)::int from run_events e where e.run_id = k.run_id) as events,
              (select count(*)::int from execution_data d where d.run_id = k.run_id) as data
       from (select $1::text as run_id) k left join run_streams s on s.run_id = k.run_id`,
      [runId],
    );
    return r.rows[0] as { version: number | null; status: string | null; resume_deadline: Date | null; events: number; data: number };
  };
  return {
    api,
    flowId: flow.body.id as string,
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

  describe('an id the run did not issue tells nothing about the run', () => {
    let sys: Awaited<ReturnType<typeof setup>>;
    let doneFlowId: string;
    beforeAll(async () => {
      sys = await setup({});
      const flow = await sys.api.post('/api/v1/flows', { projectId, displayName: 'No approval', steps: [{ name: 'only', type: 'transform', settings: { value: 1 } }] });
      expect(flow.status).toBe(201);
      doneFlowId = flow.body.id as string;
    });
    afterAll(async () => {
      await sys?.stop();
    });

    const guess = () => `req_${randomBytes(24).toString('base64url')}`;
    /** The one answer to an id the run did not issue: it names only the id that was sent. */
    const notIssued = (requestId: string) => ({
      status: 404,
      body: { statusCode: 404, code: 'PAUSE_REQUEST_MISMATCH', params: { entityType: 'flow_run_request', entityId: requestId } },
    });
    /** The same answer from the synchronous and the asynchronous resume route. */
    const onBothRoutes = async (runId: string, requestId: string, expected: { status: number; body: unknown }) => {
      for (const sync of [true, false]) {
        const a = await sys.resume(runId, requestId, sync);
        expect({ sync, status: a.status, body: a.body }).toEqual({ sync, ...expected });
      }
    };
    const finishedRun = async () => {
      const r = await sys.api.post(`/api/v1/flows/${doneFlowId}/run`, {});
      expect(r.status).toBe(201);
      return (await sys.api.waitForRun(r.body.id as string, 'SUCCEEDED')).id;
    };

    it('answers one and the same 404 on both routes for an unknown run, a finished run and a run paused on another id, changing nothing', async () => {
      const requestId = guess();
      const paused = await sys.paused();
      // Was 404 ENTITY_NOT_FOUND, 409 INVALID_TRANSITION (naming SUCCEEDED) and 404 PAUSE_REQUEST_MISMATCH.
      const targets = { unknown: randomUUID(), finished: await finishedRun(), paused: paused.runId };
      // One pg client: its queries one after the other.
      const storedAll = async () => {
        const out = [];
        for (const id of Object.values(targets)) out.push(await sys.stored(id));
        return out;
      };
      const before = await storedAll();
      expect(before[0]).toMatchObject({ version: null, events: 0, data: 0 });
      for (const [run, runId] of Object.entries(targets)) {
        for (const sync of [true, false]) {
          const a = await sys.resume(runId, requestId, sync);
          expect({ run, sync, status: a.status, body: a.body }).toEqual({ run, sync, ...notIssued(requestId) });
        }
      }
      expect(await storedAll()).toEqual(before);
      expect((await sys.api.get(`/api/v1/flow-runs/${paused.runId}`)).body).toMatchObject({ status: 'PAUSED', pause: { requestId: paused.requestId } });
    });

    it('the run’s own id: 200 with the output once, then 404 ALREADY_USED on both routes', async () => {
      const { runId, requestId } = await sys.paused();
      const first = await sys.resume(runId, requestId, true, { approved: true, comment: 'ok' });
      expect({ status: first.status, body: first.body }).toEqual({ status: 200, body: { runId, stepName: 'approve', output: { approved: true, comment: 'ok' } } });
      await sys.api.waitForRun(runId, 'SUCCEEDED');
      const after = await sys.stored(runId);
      await onBothRoutes(runId, requestId, {
        status: 404,
        body: { statusCode: 404, code: 'PAUSE_REQUEST_MISMATCH', params: { entityType: 'flow_run_request', entityId: requestId, reason: 'ALREADY_USED' } },
      });
      // A guess at the same finished run is still told nothing.
      const other = guess();
      const a = await sys.resume(runId, other, true);
      expect({ status: a.status, body: a.body }).toEqual(notIssued(other));
      expect(await sys.stored(runId)).toEqual(after);
    });

    it('the id of a run cancelled while it waited answers its holder 409 INVALID_TRANSITION naming STOPPED, on both routes, changing nothing', async () => {
      const { runId, requestId } = await sys.paused();
      expect((await sys.api.post('/api/v1/flow-runs/cancel', { flowRunIds: [runId] })).body).toEqual({ cancelled: 1 });
      await sys.api.waitForRun(runId, 'STOPPED');
      const before = await sys.stored(runId);
      await onBothRoutes(runId, requestId, {
        status: 409,
        body: { statusCode: 409, code: 'INVALID_TRANSITION', params: { entityType: 'flow_run', entityId: runId, status: 'STOPPED', command: 'ResumeRun' } },
      });
      const other = guess();
      const a = await sys.resume(runId, other, false);
      expect({ status: a.status, body: a.body }).toEqual(notIssued(other));
      expect(await sys.stored(runId)).toEqual(before);
    });
  });
});
