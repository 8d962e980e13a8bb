import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { createKafka } from '@flowruns/messaging';
import { testEnv, uniqueName, waitFor } from '@flowruns/testing';
import { Client } from 'pg';
import { newApiKey, gatewayClient } from './client';
import { startSystem } from './harness';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');
const DAY = 86_400_000;

/**
 * The data lifecycle end to end: runs executed by a real worker, a retention app on a short schedule,
 * the operator CLI's retention:run, the erase endpoint's effect through the views — and the topic,
 * which must never hold a step payload.
 */
describe('retention, end to end', () => {
  let system: Awaited<ReturnType<typeof startSystem>>;
  let api: ReturnType<typeof gatewayClient>;
  let db: Client;
  const projectId = 'proj_retention';
  const marker = `secret-${uniqueName('marker')}`;

  beforeAll(async () => {
    system = await startSystem(['command-service', 'projector', 'api-gateway', 'flow-worker']);
    api = gatewayClient(system.apps['api-gateway'].url, (await newApiKey(system.db.url, projectId)).key);
    db = new Client({ connectionString: system.db.url });
    await db.connect();
  });

  afterAll(async () => {
    await db?.end();
    await system?.stop();
  });

  const flowId = async (steps: unknown[]) => {
    const r = await api.post('/api/v1/flows', { projectId, displayName: 'Lifecycle', steps });
    expect(r.status).toBe(201);
    return r.body.id as string;
  };
  const trigger = async (flow: string, payload: unknown) => {
    const r = await api.post(`/api/v1/flows/${flow}/run`, payload);
    expect(r.status).toBe(201);
    return r.body.id as string;
  };
  /** Makes a finished run look as if it finished `days` ago (the only thing a test cannot wait for). */
  const ageRun = (runId: string, days: number) =>
    db.query(`update run_streams set finished_at = now() - make_interval(days => $2::int) where run_id = $1`, [runId, days]);
  const cli = (...args: string[]) =>
    run(process.execPath, [path.join(root, 'dist/apps/cli/src/main.js'), ...args], {
      env: { ...process.env, ...system.env, COMMAND_SERVICE_URL: system.apps['command-service'].url, RETENTION_BATCH_SIZE: '2' },
    });

  it('purges an expired run’s data on the app’s schedule and keeps its metadata; a younger one and a paused one keep everything', async () => {
    const steps = [{ name: 'shape', type: 'transform', settings: { value: { echo: '{{trigger.secret}}' } } }];
    const flow = await flowId(steps);
    const old = await trigger(flow, { secret: marker });
    const young = await trigger(flow, { secret: marker });
    const pausedFlow = await flowId([{ name: 'approve', type: 'approval', settings: {} }]);
    const paused = await trigger(pausedFlow, { secret: marker });
    await api.waitForRun(old, 'SUCCEEDED');
    await api.waitForRun(young, 'SUCCEEDED');
    await api.waitForRun(paused, 'PAUSED');
    await ageRun(old, 31);
    await ageRun(young, 29);
    // A paused run has no finish time; even aged by hand it is not a candidate.
    await db.query(`update run_streams set created_at = now() - interval '400 days' where run_id = $1`, [paused]);

    const retention = await system.add('retention', { RETENTION_INTERVAL_MS: '300', RETENTION_BATCH_SIZE: '1' });
    const purged = await api.waitForRun(old, (r) => r.executionDataPurgedAt != null, 20000);
    expect(purged).toMatchObject({ id: old, status: 'SUCCEEDED', stepsCount: 1, logsFileId: null, steps: {} });
    expect(purged.startTime).toBeTruthy();
    expect(purged.finishTime).toBeTruthy();
    expect((await db.query('select count(*)::int as n from execution_data where run_id = $1', [old])).rows[0].n).toBe(0);

    const kept = await api.waitForRun(young, 'SUCCEEDED');
    expect(kept.steps.shape.output).toEqual({ echo: marker });
    expect((await api.get(`/api/v1/flow-runs/${paused}`)).body).toMatchObject({ status: 'PAUSED', executionDataPurgedAt: null });

    // Retrying needs the data: ON_LATEST_VERSION of the purged run answers 410 with a precise code.
    const retry = await api.post(`/api/v1/flow-runs/${old}/retry`, { projectId, strategy: 'ON_LATEST_VERSION' });
    expect(retry).toMatchObject({ status: 410, body: { statusCode: 410, code: 'EXECUTION_DATA_PURGED' } });

    const metrics = await (await fetch(`${retention.url}/metrics`)).text();
    expect(Number(/^flowruns_retention_runs_purged_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    await retention.stop();
  });

  it('retention:run --dry-run counts what would expire at --now, changes nothing; without it purges in batches', async () => {
    const flow = await flowId([{ name: 'shape', type: 'transform', settings: { value: '{{trigger.secret}}' } }]);
    const runs = [await trigger(flow, { secret: marker }), await trigger(flow, { secret: marker }), await trigger(flow, { secret: marker })];
    for (const id of runs) await api.waitForRun(id, 'SUCCEEDED');
    const later = new Date(Date.now() + 31 * DAY).toISOString();

    const dry = await cli('retention:run', '--dry-run', '--now', later);
    const counted = Number(/: (\d+) runs/.exec(dry.stdout)?.[1]);
    expect(counted).toBeGreaterThanOrEqual(3);
    for (const id of runs) expect((await api.get(`/api/v1/flow-runs/${id}`)).body.executionDataPurgedAt).toBeNull();

    const real = await cli('retention:run', '--now', later);
    expect(real.stdout).toMatch(new RegExp(`: ${counted} runs, \\d+ records, \\d+ bytes in \\d+ batches`));
    for (const id of runs) await api.waitForRun(id, (r) => r.executionDataPurgedAt != null);
    expect((await cli('retention:run', '--dry-run', '--now', later)).stdout).toMatch(/: 0 runs, 0 bytes/);

    await expect(cli('retention:run', '--now', 'tomorrow')).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('--now') });
  });

  it('projects:set gives a project its own window; none goes back to the default', async () => {
    const flow = await flowId([{ name: 'shape', type: 'transform', settings: { value: 1 } }]);
    await api.waitForRun(await trigger(flow, {}), 'SUCCEEDED');
    const later = new Date(Date.now() + 31 * DAY).toISOString();
    const count = async () => Number(/: (\d+) runs/.exec((await cli('retention:run', '--dry-run', '--now', later)).stdout)?.[1]);
    expect(await count()).toBeGreaterThanOrEqual(1);
    expect((await cli('projects:set', projectId, '--retention-days', '400')).stdout).toContain(`project ${projectId}: retention 400 days`);
    expect(await count()).toBe(0);
    expect((await cli('projects:set', projectId, '--retention-days', 'none')).stdout).toContain('retention default days');
    expect(await count()).toBeGreaterThanOrEqual(1);
    await expect(cli('projects:set', projectId, '--retention-days', '0')).rejects.toMatchObject({ code: 2 });
    await expect(cli('projects:set', projectId)).rejects.toMatchObject({ code: 2 });
  });

  it('export streams each run with its steps as NDJSON; erase removes one finished run’s data now, recorded like a purge', async () => {
    const flow = await flowId([{ name: 'shape', type: 'transform', settings: { value: { n: '{{trigger.n}}' } } }]);
    const ids = [];
    for (let n = 0; n < 5; n++) ids.push(await trigger(flow, { n, secret: marker }));
    for (const id of ids) await api.waitForRun(id, 'SUCCEEDED');

    const raw = await api.raw('GET', `/api/v1/flow-runs/export?projectId=${projectId}&flowId=${flow}`);
    expect(raw.status).toBe(200);
    const lines = raw.text.trim().split('\n').map((l) => JSON.parse(l) as { id: string; steps: Record<string, { output?: unknown }> });
    expect(lines.map((l) => l.id)).toEqual([...ids].reverse());
    expect(lines.map((l) => l.steps.shape.output)).toEqual([4, 3, 2, 1, 0].map((n) => ({ n })));

    const erased = await api.post(`/api/v1/flow-runs/${ids[0]}/erase`);
    expect(erased).toMatchObject({ status: 200, body: { runId: ids[0], erased: true } });
    const gone = await api.waitForRun(ids[0], (r) => r.executionDataPurgedAt != null);
    expect(gone).toMatchObject({ status: 'SUCCEEDED', steps: {}, logsFileId: null, stepsCount: 1 });
    expect((await api.post(`/api/v1/flow-runs/${ids[0]}/erase`)).body).toMatchObject({ erased: false });
    const reasons = await db.query(`select envelope->'data'->>'reason' as reason from run_events where run_id = $1 and type = 'flowrun.execution-data-purged.v1'`, [ids[0]]);
    expect(reasons.rows).toEqual([{ reason: 'ERASE' }]);
    // Still exported, as metadata.
    const after = await api.raw('GET', `/api/v1/flow-runs/export?projectId=${projectId}&flowId=${flow}`);
    expect(JSON.parse(after.text.trim().split('\n').pop()!)).toMatchObject({ id: ids[0], steps: {} });
  });

  it('the run-events topic never held a step payload', async () => {
    // Every message on the topic, from the beginning to the end offsets measured now.
    const kafka = createKafka({ brokers: testEnv().kafkaBrokers, clientId: 'e2e-retention-scan' });
    const admin = kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(system.topic);
    await admin.disconnect();
    const total = ends.reduce((n, p) => n + Number(p.high), 0);
    expect(total).toBeGreaterThan(10);

    const consumer = kafka.consumer({ groupId: uniqueName('e2e-retention-scan') });
    let seen = 0;
    let leaked = 0;
    await consumer.connect();
    await consumer.subscribe({ topic: system.topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen++;
        if (message.value?.toString('utf8').includes(marker)) leaked++;
        for (const v of Object.values(message.headers ?? {})) if (String(v).includes(marker)) leaked++;
      },
    });
    try {
      await waitFor(() => seen >= total, { timeoutMs: 20000, what: `all ${total} messages of the topic` });
    } finally {
      await consumer.disconnect();
    }
    expect(leaked).toBe(0);
  });
});
