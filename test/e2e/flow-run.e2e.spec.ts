import { parseEnvelope, type EventEnvelope, type Flow, type FlowRun, type FlowRunWithSteps } from '@flowruns/contracts';
import { createKafka } from '@flowruns/messaging';
import { testEnv, uniqueName, waitFor } from '@flowruns/testing';
import { newApiKey } from './client';
import { startSystem } from './harness';

/**
 * One flow run end to end through the running apps: a client triggers it over REST, an engine
 * reports its steps through the command service's internal API, the projector builds the view the
 * gateway serves, and another service reads the run's events from Kafka in order.
 */
describe('a flow run, end to end', () => {
  let system: Awaited<ReturnType<typeof startSystem>>;
  let apiKey: string;
  const projectId = 'proj_e2e';

  beforeAll(async () => {
    system = await startSystem();
    // The operator CLI creates the key, as a user would.
    apiKey = (await newApiKey(system.db.url, projectId)).key;
    expect(apiKey).toMatch(/^sk-/);
  });

  afterAll(async () => {
    await system?.stop();
  });

  const gateway = (p: string, init: RequestInit = {}) =>
    fetch(`${system.apps['api-gateway'].url}${p}`, {
      ...init,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}`, ...(init.headers ?? {}) },
    });
  const internal = (p: string, body: unknown) =>
    fetch(`${system.apps['command-service'].url}/internal${p}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-internal-token': system.internalToken },
      body: JSON.stringify(body),
    });

  it('triggers over REST, records engine progress, serves the SUCCEEDED run with its steps, and streams its events in order', async () => {
    // Another service's plain kafkajs consumer, in its own group.
    const kafka = createKafka({ brokers: testEnv().kafkaBrokers, clientId: 'e2e-downstream' });
    const consumer = kafka.consumer({ groupId: uniqueName('e2e-downstream') });
    const seen: EventEnvelope[] = [];
    const offsets = new Set<string>();
    await consumer.connect();
    await consumer.subscribe({ topic: system.topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        if (offsets.has(`${partition}:${message.offset}`)) return;
        offsets.add(`${partition}:${message.offset}`);
        const p = parseEnvelope(message.value);
        if (p.kind === 'known') seen.push(p.envelope as EventEnvelope);
      },
    });

    try {
      const flowRes = await gateway('/api/v1/flows', {
        method: 'POST',
        body: JSON.stringify({
          projectId,
          displayName: 'Customer Onboarding',
          tags: ['onboarding'],
          steps: [
            { name: 'fetch_customer', type: 'http', settings: { method: 'GET', url: 'http://127.0.0.1:9/x' } },
            { name: 'welcome', type: 'transform', settings: { value: 'hi' } },
          ],
        }),
      });
      expect(flowRes.status).toBe(201);
      const flow = (await flowRes.json()) as Flow;

      const marker = `payload-${uniqueName('m')}`;
      const runRes = await gateway(`/api/v1/flows/${flow.id}/run`, { method: 'POST', body: JSON.stringify({ customer: 7, marker }) });
      expect(runRes.status).toBe(201);
      const run = (await runRes.json()) as FlowRun;
      expect(run).toMatchObject({ projectId, flowId: flow.id, status: 'RUNNING', flowVersion: { displayName: 'Customer Onboarding' } });

      const report = async (p: string, body: unknown) => {
        const r = await internal(`/runs/${run.id}${p}`, body);
        expect({ p, status: r.status, body: r.status === 200 ? 'ok' : await r.text() }).toEqual({ p, status: 200, body: 'ok' });
      };
      await report('/steps/fetch_customer/start', { stepType: 'http' });
      await report('/steps/fetch_customer/finish', {
        status: 'SUCCEEDED',
        input: { url: 'http://127.0.0.1:9/x' },
        output: { status: 200, body: { name: 'Ada', marker } },
        durationMs: 120,
      });
      await report('/steps/welcome/start', { stepType: 'transform' });
      await report('/steps/welcome/finish', { status: 'SUCCEEDED', input: { value: 'hi' }, output: 'hi', durationMs: 3 });
      await report('/succeed', {});

      const done = await waitFor(
        async () => {
          const r = await gateway(`/api/v1/flow-runs/${run.id}`);
          const body = r.status === 200 ? ((await r.json()) as FlowRunWithSteps) : undefined;
          return body?.status === 'SUCCEEDED' ? body : undefined;
        },
        { what: 'the run view to show SUCCEEDED', timeoutMs: 30000 },
      );
      expect(done.finishTime).not.toBeNull();
      expect(done.stepsCount).toBe(2);
      expect(done.tags).toEqual(['onboarding']);
      expect(done.steps.fetch_customer).toMatchObject({
        type: 'http',
        status: 'SUCCEEDED',
        duration: 120,
        input: { url: 'http://127.0.0.1:9/x' },
        output: { status: 200, body: { name: 'Ada', marker } },
      });
      expect(done.steps.welcome).toMatchObject({ status: 'SUCCEEDED', duration: 3, output: 'hi' });
      expect(done.steps.trigger).toMatchObject({ output: { customer: 7, marker } });

      const list = (await (await gateway(`/api/v1/flow-runs?projectId=${projectId}&limit=10`)).json()) as { data: FlowRun[] };
      expect(list.data.map((r) => r.id)).toContain(run.id);
      expect(list.data[0]).not.toHaveProperty('steps');

      const events = await waitFor(
        () => {
          const mine = seen.filter((e) => e.subject === run.id);
          return mine.length >= 6 ? mine : undefined;
        },
        { what: "the run's events on the topic", timeoutMs: 30000 },
      );
      expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(events.map((e) => e.type)).toEqual([
        'flowrun.triggered.v1',
        'flowrun.step.started.v1',
        'flowrun.step.succeeded.v1',
        'flowrun.step.started.v1',
        'flowrun.step.succeeded.v1',
        'flowrun.succeeded.v1',
      ]);
      // Claim check: the payloads stayed in the execution-data store, never on the topic.
      expect(JSON.stringify(seen)).not.toContain(marker);
    } finally {
      await consumer.disconnect();
    }
  });

  it('answers client mistakes with 4xx envelopes, never 5xx', async () => {
    const noKey = await fetch(`${system.apps['api-gateway'].url}/api/v1/flow-runs?projectId=${projectId}`);
    expect(noKey.status).toBe(401);
    expect(await noKey.json()).toMatchObject({ statusCode: 401, code: 'UNAUTHORIZED' });

    const wrongKey = await gateway(`/api/v1/flow-runs?projectId=${projectId}`, { headers: { authorization: 'Bearer sk-wrong' } });
    expect(wrongKey.status).toBe(401);

    for (const [q, field] of [
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['cursor=%%%not-a-cursor', 'cursor'],
      ['createdAfter=yesterday', 'createdAfter'],
    ] as const) {
      const r = await gateway(`/api/v1/flow-runs?projectId=${projectId}&${q}`);
      expect({ q, status: r.status }).toEqual({ q, status: 400 });
      expect(await r.json()).toMatchObject({ statusCode: 400, code: 'VALIDATION', params: { field } });
    }

    const missing = await gateway('/api/v1/flow-runs/run_does_not_exist');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      statusCode: 404,
      code: 'ENTITY_NOT_FOUND',
      params: { entityType: 'flow_run', entityId: 'run_does_not_exist', message: 'Flow run not found' },
    });

    const badInternal = await fetch(`${system.apps['command-service'].url}/internal/runs/x/succeed`, { method: 'POST' });
    expect(badInternal.status).toBe(401);
  });
});
