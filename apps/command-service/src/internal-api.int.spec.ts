import { randomBytes, randomUUID } from 'node:crypto';
import { parseEnvelope } from '@flowruns/contracts';
import { uniqueName, waitFor } from '@flowruns/testing';
import { Client } from 'pg';
import { startCommandService, type TestCommandService } from './app.spec-helpers';

/**
 * The internal API over HTTP, as the gateway and the engines call it: every endpoint validates its
 * body, answers domain errors as envelopes with their HTTP status, and the relay publishes what
 * the commands appended (real Postgres and Kafka).
 */
describe('command service internal API (HTTP, real Postgres + Kafka)', () => {
  let svc: TestCommandService;
  const projectId = uniqueName('p_http');

  beforeAll(async () => {
    svc = await startCommandService({ AP_MAX_RETRY_ATTEMPTS: '2' });
  });
  afterAll(async () => {
    await svc?.close();
  });

  const steps = [
    { name: 'a', type: 'transform', settings: { value: '{{trigger.x}}' } },
    { name: 'b', type: 'transform', settings: { value: '{{steps.a.output}}' } },
  ];
  const createFlow = async () => {
    const r = await svc.call('POST', '/internal/flows', { projectId, displayName: 'HTTP flow', tags: ['http'], steps });
    expect(r.status).toBe(201);
    return r.body as { id: string; version: { id: string } };
  };
  const trigger = async (flowId: string, extra: Record<string, unknown> = {}) => {
    const r = await svc.call('POST', `/internal/flows/${flowId}/runs`, { projectId, payload: { x: 1 }, ...extra });
    expect(r.status).toBe(201);
    return r.body as { id: string; status: string };
  };

  it('flows: publish, list, get; 400 naming the step; 404 across projects; 400 on a bad body or query', async () => {
    const flow = await createFlow();
    const published = await svc.call('POST', `/internal/flows/${flow.id}/versions`, { projectId, steps: [...steps, { name: 'c', type: 'delay', settings: { ms: 1 } }] });
    expect(published).toMatchObject({ status: 201, body: { id: flow.id, version: { version: 2 } } });
    const list = await svc.call<{ data: { id: string }[] }>('GET', `/internal/flows?projectId=${projectId}`);
    expect(list.status).toBe(200);
    expect(list.body.data.map((f) => f.id)).toContain(flow.id);
    expect(await svc.call('GET', `/internal/flows/${flow.id}?projectId=${projectId}`)).toMatchObject({ status: 200, body: { version: { version: 2 } } });
    expect(await svc.call('GET', `/internal/flows/${flow.id}?projectId=other`)).toMatchObject({
      status: 404,
      body: { statusCode: 404, code: 'ENTITY_NOT_FOUND', params: { entityType: 'flow' } },
    });
    expect(await svc.call('POST', `/internal/flows/${flow.id}/versions`, { projectId: 'other', steps })).toMatchObject({ status: 404 });
    const bad = await svc.call('POST', `/internal/flows/${flow.id}/versions`, {
      projectId,
      steps: [{ name: 'a', type: 'transform', settings: { value: '{{steps.b.output}}' } }, { name: 'b', type: 'transform' }],
    });
    expect(bad).toMatchObject({ status: 400, body: { code: 'FLOW_DEFINITION_INVALID', params: { stepName: 'a', referencedStep: 'b' } } });
    expect(await svc.call('POST', `/internal/flows/${flow.id}/versions`, { projectId })).toMatchObject({
      status: 400,
      body: { code: 'VALIDATION', params: { field: 'steps' } },
    });
    expect(await svc.call('GET', '/internal/flows')).toMatchObject({ status: 400, body: { code: 'VALIDATION', params: { field: 'projectId' } } });
  });

  it('retry: 200 with the same run, 201 with the new run; 409 past the maximum attempts; 409 INVALID_TRANSITION with the status', async () => {
    const flow = await createFlow();
    const run = await trigger(flow.id);
    expect(await svc.call('POST', `/internal/runs/${run.id}/retry`, { projectId, strategy: 'FROM_FAILED_STEP' })).toMatchObject({
      status: 409,
      body: { code: 'INVALID_TRANSITION', params: { status: 'RUNNING' } },
    });
    expect((await svc.call('POST', `/internal/runs/${run.id}/fail`, { failedStepName: 'a' })).status).toBe(200);
    const same = await svc.call('POST', `/internal/runs/${run.id}/retry`, { projectId, strategy: 'FROM_FAILED_STEP' });
    expect(same).toMatchObject({ status: 200, body: { id: run.id, status: 'RUNNING', attempt: 2 } });
    expect((await svc.call('POST', `/internal/runs/${run.id}/fail`, {})).status).toBe(200);
    expect(await svc.call('POST', `/internal/runs/${run.id}/retry`, { projectId, strategy: 'ON_LATEST_VERSION' })).toMatchObject({
      status: 409,
      body: { code: 'MAX_ATTEMPTS_REACHED' },
    });
    const other = await trigger(flow.id);
    await svc.call('POST', `/internal/runs/${other.id}/succeed`, {});
    const fresh = await svc.call('POST', `/internal/runs/${other.id}/retry`, { projectId, strategy: 'ON_LATEST_VERSION' });
    expect(fresh).toMatchObject({ status: 201, body: { retryOf: other.id, status: 'RUNNING' } });
    expect(await svc.call('POST', `/internal/runs/${other.id}/retry`, { projectId, strategy: 'SIDEWAYS' })).toMatchObject({
      status: 400,
      body: { code: 'VALIDATION', params: { field: 'strategy' } },
    });
  });

  it('head: the run’s version and status in its project, 404 elsewhere; bulk: counts what it changed, 400 on a bad body', async () => {
    const flow = await createFlow();
    const runs = [await trigger(flow.id), await trigger(flow.id)];
    expect(await svc.call('GET', `/internal/runs/${runs[0].id}/head?projectId=${projectId}`)).toMatchObject({
      status: 200,
      body: { runId: runs[0].id, version: 1, status: 'RUNNING' },
    });
    expect(await svc.call('GET', `/internal/runs/${runs[0].id}/head?projectId=other`)).toMatchObject({ status: 404, body: { code: 'ENTITY_NOT_FOUND' } });
    expect(await svc.call('GET', `/internal/runs/nope/head?projectId=${projectId}`)).toMatchObject({ status: 404 });
    expect(await svc.call('GET', `/internal/runs/${runs[0].id}/head`)).toMatchObject({ status: 400, body: { params: { field: 'projectId' } } });

    const cancel = await svc.call('POST', '/internal/runs/bulk', { action: 'cancel', projectId, filter: { flowRunIds: runs.map((r) => r.id) } });
    expect(cancel).toMatchObject({ status: 200, body: { action: 'cancel', changed: 2, examined: 2 } });
    expect(await svc.call('GET', `/internal/runs/${runs[1].id}/head?projectId=${projectId}`)).toMatchObject({ body: { version: 2, status: 'STOPPED' } });
    const archive = await svc.call('POST', '/internal/runs/bulk', { action: 'archive', projectId: 'other', filter: { flowRunIds: [runs[0].id] } });
    expect(archive).toMatchObject({ status: 200, body: { changed: 0, examined: 0 } });
    expect(await svc.call('POST', '/internal/runs/bulk', { action: 'retry', projectId, filter: {} })).toMatchObject({
      status: 400,
      body: { code: 'VALIDATION', params: { field: 'strategy' } },
    });
    expect(await svc.call('POST', '/internal/runs/bulk', { action: 'purge', projectId, filter: {} })).toMatchObject({ status: 400 });
  });

  it('resume: 200 with the output; 404 wrong or used id, or a run that never issued it; 410 expired', async () => {
    const flow = await createFlow();
    const run = await trigger(flow.id);
    expect(await svc.call('POST', `/internal/runs/${run.id}/resume`, { requestId: 'req_x', body: {} })).toEqual({
      status: 404,
      body: { statusCode: 404, code: 'PAUSE_REQUEST_MISMATCH', params: { entityType: 'flow_run_request', entityId: 'req_x' } },
    });
    await svc.call('POST', `/internal/runs/${run.id}/steps/a/start`, { stepType: 'approval' });
    const paused = await svc.call<{ requestId: string }>('POST', `/internal/runs/${run.id}/pause`, { stepName: 'a' });
    expect(paused.status).toBe(200);
    const { requestId } = paused.body;
    expect(await svc.call('POST', `/internal/runs/${run.id}/resume`, { requestId: 'req_wrong', body: {} })).toMatchObject({
      status: 404,
      body: { code: 'PAUSE_REQUEST_MISMATCH' },
    });
    expect(await svc.call('POST', `/internal/runs/${run.id}/resume`, { requestId, body: { ok: 1 } })).toEqual({
      status: 200,
      body: { runId: run.id, stepName: 'a', output: { ok: 1 } },
    });
    expect(await svc.call('POST', `/internal/runs/${run.id}/resume`, { requestId, body: { ok: 1 } })).toMatchObject({
      status: 404,
      body: { code: 'PAUSE_REQUEST_MISMATCH' },
    });

    const late = await trigger(flow.id);
    const p2 = await svc.call<{ requestId: string }>('POST', `/internal/runs/${late.id}/pause`, { stepName: 'a', resumeDeadline: new Date(Date.now() - 1000).toISOString() });
    expect(await svc.call('POST', `/internal/runs/${late.id}/resume`, { requestId: p2.body.requestId, body: null })).toMatchObject({
      status: 410,
      body: { statusCode: 410, code: 'PAUSE_EXPIRED' },
    });
  });

  it('leases: one of two workers wins; the loser is fenced out with 409 LEASE_LOST; release and claim-expired answer', async () => {
    const flow = await createFlow();
    const run = await trigger(flow.id);
    const [a, b] = await Promise.all(
      ['w1', 'w2'].map((workerId) => svc.call<{ acquired: boolean }>('POST', `/internal/runs/${run.id}/lease`, { workerId, ttlMs: 30000 })),
    );
    expect([a.status, b.status]).toEqual([200, 200]);
    expect([a.body.acquired, b.body.acquired].sort()).toEqual([false, true]);
    const loser = a.body.acquired ? 'w2' : 'w1';
    const winner = a.body.acquired ? 'w1' : 'w2';
    expect(await svc.call('POST', `/internal/runs/${run.id}/steps/a/start`, { stepType: 'transform', workerId: loser })).toMatchObject({
      status: 409,
      body: { code: 'LEASE_LOST', params: { holder: winner } },
    });
    expect(await svc.call('POST', `/internal/runs/${run.id}/steps/a/start`, { stepType: 'transform', workerId: winner })).toMatchObject({ status: 200 });
    expect(await svc.call('POST', `/internal/runs/${run.id}/lease/release`, { workerId: loser })).toEqual({ status: 200, body: { released: false } });
    expect(await svc.call('POST', `/internal/runs/${run.id}/lease/release`, { workerId: winner })).toEqual({ status: 200, body: { released: true } });
    expect(await svc.call('POST', '/internal/leases/claim-expired', { workerId: 'w3', ttlMs: 30000 })).toMatchObject({ status: 200, body: { runIds: [] } });
    expect(await svc.call('POST', `/internal/runs/${run.id}/lease`, { workerId: 'w1', ttlMs: 5 })).toMatchObject({ status: 400, body: { code: 'VALIDATION' } });
    expect(await svc.call('POST', '/internal/runs/missing/lease', { workerId: 'w1', ttlMs: 5000 })).toMatchObject({ status: 404 });

    const exec = await svc.call<{ steps: { name: string }[] }>('GET', `/internal/runs/${run.id}/execution`);
    expect(exec).toMatchObject({ status: 200, body: { runId: run.id, trigger: { x: 1 }, results: { a: { status: 'RUNNING' } } } });
    expect(exec.body.steps.map((s) => s.name)).toEqual(['a', 'b']);
    expect(await svc.call('GET', '/internal/runs/missing/execution')).toMatchObject({ status: 404, body: { code: 'ENTITY_NOT_FOUND' } });
  });

  it('resume: an id the run did not issue is one 404 for any run id, an unknown one included; 409 to the holder of an abandoned id; nothing appended or published', async () => {
    const flow = await createFlow();
    const pausedOn = async (runId: string) => {
      await svc.call('POST', `/internal/runs/${runId}/steps/a/start`, { stepType: 'approval' });
      const p = await svc.call<{ requestId: string }>('POST', `/internal/runs/${runId}/pause`, { stepName: 'a' });
      expect(p.status).toBe(200);
      return p.body.requestId;
    };
    const paused = await trigger(flow.id);
    const awaited = await pausedOn(paused.id);
    const running = await trigger(flow.id);
    const finished = await trigger(flow.id);
    expect((await svc.call('POST', `/internal/runs/${finished.id}/succeed`, {})).status).toBe(200);
    const cancelled = await trigger(flow.id);
    const abandoned = await pausedOn(cancelled.id);
    expect((await svc.call('POST', `/internal/runs/${cancelled.id}/stop`, { projectId })).status).toBe(200);
    const unknown = randomUUID();
    const runIds = [unknown, running.id, finished.id, cancelled.id, paused.id];

    const pg = new Client({ connectionString: svc.databaseUrl });
    await pg.connect();
    const consumer = svc.kafka.consumer({ groupId: uniqueName('it-cmdsvc-resume') });
    try {
      /** The event log (the outbox the relay publishes), the runs' rows and their stored data. */
      const written = async () => ({
        events: (await pg.query('select run_id, event_id from run_events where run_id = any($1) order by run_id, seq', [runIds])).rows,
        streams: (await pg.query('select run_id, version, state from run_streams where run_id = any($1) order by run_id', [runIds])).rows,
        data: (await pg.query('select run_id, ref from execution_data where run_id = any($1) order by ref', [runIds])).rows,
      });
      const before = await written();

      const guess = `req_${randomBytes(24).toString('base64url')}`;
      for (const runId of runIds) {
        expect({ runId, answer: await svc.call('POST', `/internal/runs/${runId}/resume`, { requestId: guess, body: { approved: true } }) }).toEqual({
          runId,
          answer: { status: 404, body: { statusCode: 404, code: 'PAUSE_REQUEST_MISMATCH', params: { entityType: 'flow_run_request', entityId: guess } } },
        });
      }
      // The paused run's own id is not another run's: presented elsewhere it is just not issued.
      expect(await svc.call('POST', `/internal/runs/${running.id}/resume`, { requestId: awaited, body: {} })).toMatchObject({
        status: 404,
        body: { code: 'PAUSE_REQUEST_MISMATCH', params: { entityId: awaited } },
      });
      // Its holder, once the run was cancelled while waiting on it: the run no longer waits.
      expect(await svc.call('POST', `/internal/runs/${cancelled.id}/resume`, { requestId: abandoned, body: {} })).toEqual({
        status: 409,
        body: { statusCode: 409, code: 'INVALID_TRANSITION', params: { entityType: 'flow_run', entityId: cancelled.id, status: 'STOPPED', command: 'ResumeRun' } },
      });
      expect(await written()).toEqual(before);

      expect(await svc.call('POST', `/internal/runs/${paused.id}/resume`, { requestId: awaited, body: { approved: true } })).toEqual({
        status: 200,
        body: { runId: paused.id, stepName: 'a', output: { approved: true } },
      });
      // What the relay publishes of these runs is exactly their log: the refusals added nothing to it.
      const logged = new Set((await written()).events.map((e: { event_id: string }) => e.event_id));
      expect(logged.size).toBe(before.events.length + 1);
      const published = new Set<string>();
      await consumer.connect();
      await consumer.subscribe({ topic: svc.topic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          const p = parseEnvelope(message.value);
          if (p.kind === 'known' && runIds.includes(p.envelope.subject)) published.add(p.envelope.id);
        },
      });
      await waitFor(() => [...logged].every((id) => published.has(id)), { what: 'the runs’ events on the topic', timeoutMs: 30000 });
      expect([...published].sort()).toEqual([...logged].sort());
    } finally {
      await consumer.disconnect();
      await pg.end();
    }
  });

  it('stop cascades and the relay publishes every event it appended; time-out and internal-error end runs', async () => {
    const flow = await createFlow();
    const root = await trigger(flow.id);
    const child = await trigger(flow.id, { parentRunId: root.id });
    const grandchild = await trigger(flow.id, { parentRunId: child.id });
    expect(await svc.call('POST', `/internal/runs/${root.id}/stop`, { projectId: 'other' })).toMatchObject({ status: 404 });
    const stopped = await svc.call('POST', `/internal/runs/${root.id}/stop`, { projectId });
    expect(stopped).toMatchObject({ status: 200, body: { runId: root.id, status: 'STOPPED', eventsAppended: 1, stopped: 3 } });
    expect(await svc.call('POST', `/internal/runs/${root.id}/stop`, {})).toMatchObject({ status: 409, body: { params: { status: 'STOPPED' } } });

    const t = await trigger(flow.id);
    expect(await svc.call('POST', `/internal/runs/${t.id}/time-out`, { reason: 'WORKER_LOST' })).toMatchObject({ status: 200, body: { status: 'TIMEOUT' } });
    expect(await svc.call('POST', `/internal/runs/${t.id}/time-out`, { reason: 'LUNCH' })).toMatchObject({ status: 400 });
    const ie = await trigger(flow.id);
    expect(await svc.call('POST', `/internal/runs/${ie.id}/internal-error`, { reason: 'engine crashed' })).toMatchObject({
      status: 200,
      body: { status: 'INTERNAL_ERROR' },
    });

    const consumer = svc.kafka.consumer({ groupId: uniqueName('it-cmdsvc-reader') });
    const seen: { subject: string; type: string }[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic: svc.topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const p = parseEnvelope(message.value);
        if (p.kind === 'known') seen.push({ subject: p.envelope.subject, type: p.envelope.type });
      },
    });
    try {
      await waitFor(
        () => [root.id, child.id, grandchild.id].every((id) => seen.some((e) => e.subject === id && e.type === 'flowrun.stopped.v1')),
        { what: 'the stop cascade on the topic', timeoutMs: 30000 },
      );
    } finally {
      await consumer.disconnect();
    }
  });
});
