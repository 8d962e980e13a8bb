import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { createKafka } from '@flowruns/messaging';
import { dropTestDatabase, parseDatabaseUrl } from '@flowruns/database';
import { testEnv, uniqueName, waitFor } from '@flowruns/testing';
import { Client } from 'pg';
import { newApiKey, gatewayClient } from './client';
import { startSystem } from './harness';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');
const main = path.join(root, 'dist/apps/cli/src/main.js');
const DAY = 86_400_000;

/** Every command the operator has (apps/cli/README.md). */
const COMMANDS = [
  'db:migrate',
  'topics:create',
  'api-keys:create',
  'api-keys:list',
  'api-keys:revoke',
  'projects:set',
  'projects:list',
  'retention:plan',
  'retention:run',
  'projection:rebuild',
  'projection:stalls',
  'dead-letters:list',
  'dead-letters:replay',
];

/** The CLI's contract with a shell: help on every command, one clear line per mistake, exit codes by kind. */
describe('operator CLI: help, errors and exit codes', () => {
  const cli = (args: string[], env: Record<string, string> = {}) => run(process.execPath, [main, ...args], { env: { ...process.env, ...env } });
  /** Exit code, stdout and stderr, whether it failed or not. */
  const outcome = async (args: string[], env: Record<string, string> = {}) => {
    try {
      const { stdout, stderr } = await cli(args, env);
      return { code: 0, stdout, stderr };
    } catch (e) {
      const { code, stdout, stderr } = e as { code: number; stdout: string; stderr: string };
      return { code, stdout, stderr };
    }
  };
  const noStack = (text: string) => expect(text).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);

  it('lists every command in its help, and every command has --help (exit 0)', async () => {
    const { stdout } = await cli(['--help']);
    for (const c of COMMANDS) expect(stdout).toContain(c);
    expect(stdout).toMatch(/Exit codes: 0 ok, 1 failure, 2 usage error, 3 invalid\s+configuration/);
    const helps = await Promise.all(COMMANDS.map((c) => outcome([c, '--help'])));
    helps.forEach((help, i) => expect(help).toMatchObject({ code: 0, stdout: expect.stringContaining(`Usage: flow-runs ${COMMANDS[i]}`) }));
    expect((await cli(['help', 'retention:plan'])).stdout).toContain('--now <iso>');
  });

  it.each([
    ['no command', []],
    ['an unknown command', ['api-keys:mint']],
    ['a missing required option', ['api-keys:create']],
    ['an unknown option', ['api-keys:list', '--project', 'p', '--all']],
    ['a missing argument', ['api-keys:revoke']],
    ['an invalid option value', ['projects:set', 'p', '--monthly-run-quota', 'lots']],
    ['an invalid --now', ['retention:plan', '--now', 'yesterday']],
    ['an invalid --limit', ['projection:stalls', '--limit', '0']],
    ['nothing to replay', ['dead-letters:replay']],
  ])('exits 2 on a usage error: %s, without a stack trace', async (_what, args) => {
    const r = await outcome(args, { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/never_used' });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    if (args.length) expect(r.stderr).toMatch(/^error: .+/m);
    noStack(r.stderr);
  });

  it('exits 3 on an invalid setting, naming the variable', async () => {
    const r = await outcome(['api-keys:list', '--project', 'p'], { DATABASE_URL: 'not a url' });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('DATABASE_URL');
    noStack(r.stderr);
  });

  it('exits 1 when a dependency cannot be reached, saying which and from which setting', async () => {
    const db = await outcome(['api-keys:list', '--project', 'p'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/flowruns' });
    expect(db.code).toBe(1);
    expect(db.stderr).toMatch(/^error: cannot reach Postgres at postgres:\/\/postgres@127\.0\.0\.1:1\/flowruns \(DATABASE_URL\)/);
    noStack(db.stderr);
    const cs = await outcome(['retention:plan'], { COMMAND_SERVICE_URL: 'http://127.0.0.1:1' });
    expect(cs.code).toBe(1);
    expect(cs.stderr).toMatch(/^error: cannot reach the command service at http:\/\/127\.0\.0\.1:1 \(COMMAND_SERVICE_URL\)/);
    noStack(cs.stderr);
  });
});

/**
 * The commands that work on the database and the broker alone, from a fresh database: migrations,
 * topics, API keys, projects and projection stalls, with their success output and their failures'
 * exit codes.
 */
describe('operator CLI: db:migrate, topics:create, api-keys:*, projects:*, projection:stalls', () => {
  const dbName = uniqueName('flowruns_test_cli').toLowerCase();
  const url = parseDatabaseUrl(testEnv().databaseUrl).serverUrl(dbName);
  const topic = uniqueName('e2e-cli-topics');
  const env = { DATABASE_URL: url, KAFKA_BROKERS: testEnv().kafkaBrokers.join(','), KAFKA_TOPIC: topic, KAFKA_TOPIC_PARTITIONS: '2' };
  const cli = (...args: string[]) => run(process.execPath, [main, ...args], { env: { ...process.env, ...env } });
  /** The database migrated (by the first test, or here when a test runs alone). */
  const migrated = () => cli('db:migrate');

  afterAll(async () => {
    await dropTestDatabase(url).catch(() => undefined);
    const admin = createKafka({ brokers: testEnv().kafkaBrokers, clientId: 'e2e-cli-topics' }).admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic, `${topic}.dlq`] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('before db:migrate, a command says to run it (exit 1); db:migrate migrates, then finds the database up to date', async () => {
    const notYet = await cli('api-keys:list', '--project', 'p').catch((e: { code: number; stderr: string }) => e);
    expect(notYet).toMatchObject({ code: 1, stderr: 'error: the database has no table api_keys: run db:migrate first (npm run migrate)\n' });
    expect((await cli('db:migrate')).stdout).toMatch(/^applied: \S+/);
    expect((await cli('db:migrate')).stdout).toBe('database is up to date\n');
  });

  it('topics:create creates the topic with its partitions and its dead-letter topic, and again changes nothing (exit 0)', async () => {
    const first = await cli('topics:create');
    expect(first.stdout).toBe(`topics ready: ${topic}, ${topic}.dlq\n`);
    expect((await cli('topics:create')).stdout).toBe(first.stdout);
    const admin = createKafka({ brokers: testEnv().kafkaBrokers, clientId: 'e2e-cli-topics' }).admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic, `${topic}.dlq`] });
      expect(Object.fromEntries(topics.map((t) => [t.name, t.partitions.length]))).toEqual({ [topic]: 2, [`${topic}.dlq`]: 1 });
    } finally {
      await admin.disconnect();
    }
  });

  it('api-keys: create prints the key last, list shows prefixes and state, revoke revokes once (then exit 1)', async () => {
    await migrated();
    const created = await cli('api-keys:create', '--project', 'proj_cli');
    const [said, key] = created.stdout.trim().split('\n');
    const id = /^Created API key (key_[0-9a-f-]+) for project proj_cli\. Store it now/.exec(said)?.[1];
    expect(id).toBeDefined();
    expect(key.length).toBeGreaterThanOrEqual(20);
    const listed = (await cli('api-keys:list', '--project', 'proj_cli')).stdout;
    expect(listed).toMatch(new RegExp(`^${id}\t(\\S+)…\tcreated \\S+Z\tactive$`, 'm'));
    expect(key.startsWith(new RegExp(`^${id}\t(\\S+)…`, 'm').exec(listed)![1])).toBe(true);
    expect(listed).not.toContain(key);

    expect((await cli('api-keys:revoke', id!)).stdout).toBe(`revoked ${id}\n`);
    expect((await cli('api-keys:list', '--project', 'proj_cli')).stdout).toMatch(new RegExp(`^${id}\t.*\trevoked \\S+Z$`, 'm'));
    await expect(cli('api-keys:revoke', id!)).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining(`error: no active key ${id}`) });
    expect((await cli('api-keys:list', '--project', 'proj_nobody')).stdout).toBe('no keys for project proj_nobody\n');
    await expect(cli('api-keys:create', '--project', 'not a project!')).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('--project') });
  });

  it('projects: set a monthly quota and a retention window, clear them with none, list them; an unknown project is exit 1', async () => {
    await migrated();
    expect((await cli('projects:set', 'proj_q', '--monthly-run-quota', '5')).stdout).toBe('project proj_q: retention default days, monthly run quota 5\n');
    expect((await cli('projects:set', 'proj_q', '--retention-days', '7')).stdout).toBe('project proj_q: retention 7 days, monthly run quota 5\n');
    expect((await cli('projects:list', '--project', 'proj_q')).stdout).toBe('project proj_q: retention 7 days, monthly run quota 5\n');
    expect((await cli('projects:list')).stdout).toContain('project proj_q: retention 7 days, monthly run quota 5\n');
    expect((await cli('projects:set', 'proj_q', '--monthly-run-quota', 'none')).stdout).toBe('project proj_q: retention 7 days, monthly run quota unlimited\n');
    await expect(cli('projects:list', '--project', 'proj_other')).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('no project proj_other') });
    await expect(cli('projects:set', 'proj_q', '--monthly-run-quota', '0')).rejects.toMatchObject({ code: 2 });
  });

  it('projection:stalls: none yet; then newest first, as a table or JSON lines, up to --limit; a bad --limit is exit 2', async () => {
    await migrated();
    expect((await cli('projection:stalls')).stdout).toBe('no stalled runs\n');
    expect((await cli('projection:stalls', '--json')).stdout).toBe('');
    const db = new Client({ connectionString: url });
    await db.connect();
    try {
      await db.query(
        `insert into projection_stalls (run_id, expected_seq, received_seq, event_id, event_type, reason, detected_at) values
           ('run-s1', 1, 1, 'evt-1', 'flowrun.step.started.v1', 'not-created', '2026-11-29T10:00:00Z'),
           ('run-s2', 4, 6, 'evt-2', 'flowrun.step.succeeded.v1', 'gap', '2026-11-29T11:00:00Z')`,
      );
      expect((await cli('projection:stalls')).stdout.split('\n')).toEqual([
        expect.stringMatching(/^RUN +PROJECT +REASON +EVENT TYPE +EXPECTED +RECEIVED +EVENT +DETECTED AT$/),
        expect.stringMatching(/^run-s2 +- +gap +flowrun\.step\.succeeded\.v1 +4 +6 +evt-2 +2026-11-29T11:00:00\.000Z$/),
        expect.stringMatching(/^run-s1 +- +not-created +flowrun\.step\.started\.v1 +1 +1 +evt-1 +2026-11-29T10:00:00\.000Z$/),
        '2 stalled run(s)',
        '',
      ]);
      expect((await cli('projection:stalls', '--limit', '1')).stdout).toMatch(/^run-s2 .*\nthe newest 1 of 2 stalled run\(s\) \(--limit\)\n$/m);
      const json = (await cli('projection:stalls', '--json', '--limit', '1')).stdout;
      expect(json.trimEnd().split('\n').map((line) => JSON.parse(line))).toEqual([
        { runId: 'run-s2', projectId: null, reason: 'gap', eventType: 'flowrun.step.succeeded.v1', expectedSeq: 4, receivedSeq: 6, eventId: 'evt-2', detectedAt: '2026-11-29T11:00:00.000Z' },
      ]);
      await expect(cli('projection:stalls', '--limit', 'ten')).rejects.toMatchObject({
        code: 2,
        stdout: '',
        stderr: expect.stringContaining('error: --limit: "ten" must be an integer from 1 to 10000'),
      });

      // A database whose migrations stop before the reason was kept: told to migrate, not an SQL error.
      await db.query('alter table projection_stalls drop column reason');
      try {
        await expect(cli('projection:stalls')).rejects.toMatchObject({
          code: 1,
          stderr: 'error: the database has no column s.reason: run db:migrate first (npm run migrate)\n',
        });
      } finally {
        await db.query('alter table projection_stalls add column reason text null');
      }
    } finally {
      await db.end();
    }
  });
});

/** The operator CLI against a running system: rebuilding the views, inspecting and replaying dead letters. */
describe('operator CLI: projection rebuild and dead letters', () => {
  let system: Awaited<ReturnType<typeof startSystem>>;
  let api: ReturnType<typeof gatewayClient>;
  let db: Client;
  const projectId = 'proj_ops';

  beforeAll(async () => {
    system = await startSystem(['command-service', 'projector', 'api-gateway']);
    api = gatewayClient(system.apps['api-gateway'].url, (await newApiKey(system.db.url, projectId)).key);
    db = new Client({ connectionString: system.db.url });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
    await system?.stop();
  });

  const cli = (...args: string[]) => run(process.execPath, [main, ...args], { env: { ...process.env, ...system.env } });
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

/** retention:plan counts what a purge would take, per the projects' windows, and changes nothing. */
describe('operator CLI: retention:plan', () => {
  let system: Awaited<ReturnType<typeof startSystem>>;
  let api: ReturnType<typeof gatewayClient>;
  let db: Client;
  const projectId = 'proj_plan';

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

  const cli = (...args: string[]) =>
    run(process.execPath, [main, ...args], { env: { ...process.env, ...system.env, COMMAND_SERVICE_URL: system.apps['command-service'].url } });
  const plan = async (...args: string[]) => JSON.parse((await cli('retention:plan', '--json', ...args)).stdout) as { now: string; defaultDays: number; runs: number; bytes: number };

  it('counts the expired runs and their bytes at now or --now, honours a project override, and purges nothing', async () => {
    const flow = await api.post('/api/v1/flows', { projectId, displayName: 'Plan', steps: [{ name: 'a', type: 'transform', settings: { value: { big: 'x'.repeat(500) } } }] });
    const old = (await api.post(`/api/v1/flows/${flow.body.id}/run`, { n: 1 })).body.id as string;
    const young = (await api.post(`/api/v1/flows/${flow.body.id}/run`, { n: 2 })).body.id as string;
    await api.waitForRun(old, 'SUCCEEDED');
    await api.waitForRun(young, 'SUCCEEDED');
    await db.query(`update run_streams set finished_at = now() - interval '31 days' where run_id = $1`, [old]);
    const records = async () => (await db.query('select count(*)::int as n from execution_data')).rows[0].n as number;
    const before = await records();

    const now = await plan();
    expect(now).toMatchObject({ defaultDays: 30, runs: 1 });
    expect(now.bytes).toBeGreaterThan(500);
    const human = (await cli('retention:plan')).stdout;
    expect(human).toMatch(/^plan at \S+Z \(default window 30 days\): 1 runs, \d+ bytes would be purged$/m);

    const later = new Date(Date.now() + 31 * DAY).toISOString();
    expect(await plan('--now', later)).toMatchObject({ now: later, runs: 2 });

    await cli('projects:set', projectId, '--retention-days', '400');
    expect((await cli('projects:list', '--project', projectId)).stdout).toContain(`project ${projectId}: retention 400 days`);
    expect(await plan('--now', later)).toMatchObject({ runs: 0, bytes: 0 });

    expect(await records()).toBe(before);
    expect((await api.get(`/api/v1/flow-runs/${old}`)).body).toMatchObject({ executionDataPurgedAt: null });
  });

  it('exits 1 when the command service refuses the internal token, naming the setting', async () => {
    const refused = run(process.execPath, [main, 'retention:plan'], {
      env: { ...process.env, ...system.env, COMMAND_SERVICE_URL: system.apps['command-service'].url, INTERNAL_API_TOKEN: 'not-the-token-of-this-system' },
    });
    await expect(refused).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/^error: the command service refused the internal token \(INTERNAL_API_TOKEN\)/m) });
  });
});
