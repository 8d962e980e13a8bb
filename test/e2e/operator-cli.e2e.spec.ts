import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { createKafka } from '@flowruns/messaging';
import { testEnv, waitFor } from '@flowruns/testing';
import { Client } from 'pg';
import { createApiKey, gatewayClient } from './client';
import { startSystem } from './harness';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');

/** The operator CLI against a running system: rebuilding the views, inspecting and replaying dead letters. */
describe('operator CLI: projection rebuild and dead letters', () => {
  let system: Awaited<ReturnType<typeof startSystem>>;
  let api: ReturnType<typeof gatewayClient>;
  let db: Client;
  const projectId = 'proj_ops';

  beforeAll(async () => {
    system = await startSystem(['command-service', 'projector', 'api-gateway']);
    api = gatewayClient(system.apps['api-gateway'].url, createApiKey(system.db.url, projectId));
    db = new Client({ connectionString: system.db.url });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
    await system?.stop();
  });

  const cli = (...args: string[]) => run(process.execPath, [path.join(root, 'dist/apps/cli/src/main.js'), ...args], { env: { ...process.env, ...system.env } });
  /** The views, without the column that only says when a row was last written. */
  const views = async () => ({
    runs: (await db.query('select * from run_views order by id')).rows.map(({ updated_at: _u, ...r }) => r),
    steps: (await db.query('select * from step_views order by run_id, step_name')).rows,
  });

  it('dead-letters:list shows a poison message with its origin and reason; replay puts it back on its topic', async () => {
    const producer = createKafka({ brokers: testEnv().kafkaBrokers, clientId: 'e2e-poison' }).producer();
    await producer.connect();
    await producer.send({ topic: system.topic, messages: [{ key: 'poison-1', value: 'not json {{{', headers: { source: 'e2e' } }] });
    await producer.disconnect();

    const listed = await waitFor(
      async () => {
        const { stdout } = await cli('dead-letters:list');
        return /1 dead letter\(s\)/.test(stdout) ? stdout : undefined;
      },
      { timeoutMs: 30000, intervalMs: 500, what: 'the poison message on the dead-letter topic' },
    );
    expect(listed).toContain(`from ${system.topic}/`);
    expect(listed).toContain('key poison-1');
    expect(listed).toContain('"not json {{{"');

    const at = /^(\d+:\d+)\t/m.exec(listed)![1];
    expect((await cli('dead-letters:replay', '--at', at)).stdout).toContain('replayed 1 dead letter(s)');
    // Still poison: the projector dead-letters it again, marked as the replay of the first.
    await waitFor(async () => /2 dead letter\(s\)/.test((await cli('dead-letters:list')).stdout), {
      timeoutMs: 30000,
      intervalMs: 500,
      what: 'the replayed message dead-lettered again',
    });
    await expect(cli('dead-letters:replay')).rejects.toMatchObject({ code: 2 });
    await expect(cli('dead-letters:replay', '--at', '0:99999')).rejects.toMatchObject({ code: 1 });
  });

  it('projection:rebuild refuses while a projector runs; with it stopped, the views are rebuilt identical from the topic', async () => {
    const flow = await api.post('/api/v1/flows', { projectId, displayName: 'Ops', steps: [{ name: 'a', type: 'transform', settings: { value: 1 } }] });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await api.post(`/api/v1/flows/${flow.body.id}/run`, { i })).body.id as string);
    await api.post('/api/v1/flow-runs/archive', { flowRunIds: [ids[0]] });
    await api.post('/api/v1/flow-runs/cancel', { flowRunIds: [ids[1]] });
    await api.waitForRun(ids[1], 'STOPPED');
    await waitFor(async () => (await db.query('select 1 from run_views where archived_at is not null and id = $1', [ids[0]])).rowCount === 1, {
      timeoutMs: 10000,
      what: 'the archive projected',
    });
    const before = await views();
    expect(before.runs.length).toBeGreaterThanOrEqual(4);

    await expect(cli('projection:rebuild')).rejects.toMatchObject({ code: 2 });
    await expect(cli('projection:rebuild', '--yes')).rejects.toMatchObject({ stderr: expect.stringContaining('active member') });

    await system.apps.projector.stop();
    const { stdout } = await cli('projection:rebuild', '--yes');
    expect(stdout).toMatch(/start the projector to replay \d+ events/);
    expect((await db.query('select count(*)::int as n from run_views')).rows[0].n).toBe(0);

    await system.add('projector');
    await waitFor(async () => JSON.stringify(await views()) === JSON.stringify(before), { timeoutMs: 30000, what: 'the rebuilt views to equal the old ones' });
  });
});
