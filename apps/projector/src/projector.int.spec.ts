import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Client } from 'pg';
import { EVENT_SOURCE, EVENT_SPEC_VERSION, type EventEnvelope } from '@flowruns/contracts';
import { dropTestDatabase, ensureDatabase, migrate, parseDatabaseUrl } from '@flowruns/database';
import { consumerLag, createKafka, KafkaPublisher, type Admin, type Kafka } from '@flowruns/messaging';
import { createTestDatabase, testEnv, uniqueName, waitFor } from '@flowruns/testing';
import { loadProjectorConfig } from './config';
import { ProjectorModule } from './projector.module';

/** The projector app as it runs (its Nest module, HTTP included) against real Postgres and Kafka. */

const env = testEnv();

const envelope = (runId: string, seq: number, type: string, data: Record<string, unknown>): EventEnvelope => ({
  specversion: EVENT_SPEC_VERSION,
  id: `${runId}-${seq}`,
  type,
  source: EVENT_SOURCE,
  time: new Date(Date.UTC(2026, 3, 1, 8, 0, seq)).toISOString(),
  subject: runId,
  projectId: 'proj-app',
  flowId: 'flow-app',
  seq,
  datacontenttype: 'application/json',
  data,
});

const runEvents = (runId: string): EventEnvelope[] => [
  envelope(runId, 1, 'flowrun.triggered.v1', {
    flowVersionId: 'fv-1',
    flowDisplayName: 'App test',
    environment: 'PRODUCTION',
    triggeredBy: null,
    tags: [],
    stepsCount: 1,
    parentRunId: null,
    failParentOnFailure: false,
    retryOf: null,
    triggerDataRef: null,
    logsFileId: null,
  }),
  envelope(runId, 2, 'flowrun.step.started.v1', { stepName: 'only', stepType: 'CODE', attempt: 1 }),
  envelope(runId, 3, 'flowrun.reviewed.v1', { by: 'a newer producer' }),
  envelope(runId, 4, 'flowrun.step.succeeded.v1', { stepName: 'only', stepType: 'CODE', attempt: 1, durationMs: 5, dataRef: 'd' }),
  envelope(runId, 5, 'flowrun.succeeded.v1', { durationMs: 50 }),
];

async function startApp(overrides: Record<string, string>): Promise<{ app: INestApplication; url: string }> {
  const config = loadProjectorConfig({
    KAFKA_BROKERS: env.kafkaBrokers.join(','),
    KAFKA_TOPIC_PARTITIONS: '2',
    LOG_LEVEL: 'warn',
    ...overrides,
  });
  const moduleRef = await Test.createTestingModule({ imports: [ProjectorModule.forConfig(config)] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  return { app, url: `http://127.0.0.1:${address.port}` };
}

const getJson = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, Record<string, Record<string, unknown>>> };
};

/** A counter's value in the Prometheus text format (0 when absent). */
const metric = (text: string, line: string): number => {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found ? Number(found.slice(line.length + 1)) : 0;
};

async function runVersion(dbUrl: string, runId: string): Promise<number | undefined> {
  const c = new Client({ connectionString: dbUrl });
  await c.connect();
  try {
    const r = await c.query<{ version: number }>('select version from run_views where id = $1', [runId]);
    return r.rows[0]?.version;
  } finally {
    await c.end();
  }
}

describe('projector app', () => {
  let kafka: Kafka;
  let admin: Admin;
  let publisher: KafkaPublisher;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    kafka = createKafka({ brokers: env.kafkaBrokers, clientId: uniqueName('projector-app-it') });
    admin = kafka.admin();
    await admin.connect();
    publisher = new KafkaPublisher(kafka);
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });
  afterAll(async () => {
    await publisher.close();
    await admin.disconnect();
  });

  it('projects, reports lag and metrics, and on shutdown commits and leaves so a restart resumes exactly', async () => {
    const db = await createTestDatabase('projector_app');
    cleanups.push(db.drop);
    const topic = uniqueName('it-app-events');
    const groupId = uniqueName('it-app-projector');
    cleanups.push(() => admin.deleteTopics({ topics: [topic, `${topic}.dlq`] }));
    const overrides = { DATABASE_URL: db.url, KAFKA_TOPIC: topic, PROJECTOR_GROUP_ID: groupId };

    let { app, url } = await startApp(overrides);
    cleanups.push(() => app.close());
    // The app creates its topics (idempotently) and joins the group before it says it is ready.
    const ready = await waitFor(
      async () => {
        const r = await getJson(`${url}/health/ready`);
        return r.status === 200 ? r.body : undefined;
      },
      { timeoutMs: 30000, what: 'projector ready' },
    );
    expect(ready.details.consumer).toMatchObject({ status: 'up', groupId, topic, lag: 0 });
    expect(ready.details.postgres.status).toBe('up');
    expect(ready.details.kafka.status).toBe('up');

    const before = await (await fetch(`${url}/metrics`)).text();
    const at = (text: string, outcome: string) => metric(text, `flowruns_projector_events_total{outcome="${outcome}"}`);
    await publisher.publish(topic, [
      ...runEvents('run-app-1').map((e) => ({ key: e.subject, value: JSON.stringify(e), headers: {} })),
      { key: 'run-app-1', value: 'not json at all', headers: {} },
    ]);
    await waitFor(async () => (await runVersion(db.url, 'run-app-1')) === 5, { timeoutMs: 30000, what: 'run projected' });
    await waitFor(
      async () => {
        const r = await getJson(`${url}/health/ready`);
        return r.status === 200 && r.body.details.consumer.lag === 0;
      },
      { what: 'lag back to 0' },
    );
    const after = await (await fetch(`${url}/metrics`)).text();
    expect(at(after, 'applied') - at(before, 'applied')).toBe(4);
    expect(at(after, 'unknown') - at(before, 'unknown')).toBe(1);
    expect(at(after, 'dead_lettered') - at(before, 'dead_lettered')).toBe(1);
    expect(at(after, 'duplicate') - at(before, 'duplicate')).toBe(0);
    expect(metric(after, 'flowruns_projector_batch_apply_seconds_count{result="committed"}')).toBeGreaterThan(0);
    expect(after).toMatch(/^flowruns_projector_consumer_lag \d+$/m);
    expect(after).toMatch(/^flowruns_projector_partition_lag\{partition="0"\} \d+$/m);

    // Graceful shutdown: the group is left (no member waits out a session timeout) and committed.
    await app.close();
    const [group] = (await admin.describeGroups([groupId])).groups;
    expect(group.state).toBe('Empty');
    expect(await consumerLag(admin, groupId, topic)).toBe(0);

    // Events published while no projector runs are picked up by the next one, and nothing earlier
    // is applied again.
    await publisher.publish(
      topic,
      runEvents('run-app-2').map((e) => ({ key: e.subject, value: JSON.stringify(e), headers: {} })),
    );
    ({ app, url } = await startApp(overrides));
    cleanups.push(() => app.close());
    await waitFor(async () => (await runVersion(db.url, 'run-app-2')) === 5, { timeoutMs: 30000, what: 'second run projected' });
    const resumed = await (await fetch(`${url}/metrics`)).text();
    expect(at(resumed, 'applied') - at(after, 'applied')).toBe(4);
    expect(at(resumed, 'duplicate') - at(after, 'duplicate')).toBe(0);
    expect(at(resumed, 'dead_lettered') - at(after, 'dead_lettered')).toBe(0);
  });

  it('never migrates: on an empty database it reports not ready until the migrate step ran', async () => {
    const { serverUrl } = parseDatabaseUrl(env.databaseUrl);
    const dbUrl = serverUrl(uniqueName('flowruns_test_unmigrated').toLowerCase());
    await ensureDatabase(dbUrl);
    cleanups.push(() => dropTestDatabase(dbUrl));
    const topic = uniqueName('it-app-events');
    cleanups.push(() => admin.deleteTopics({ topics: [topic, `${topic}.dlq`] }));

    const { app, url } = await startApp({ DATABASE_URL: dbUrl, KAFKA_TOPIC: topic, PROJECTOR_GROUP_ID: uniqueName('it-app') });
    cleanups.push(() => app.close());
    const notReady = await waitFor(
      async () => {
        const r = await getJson(`${url}/health/ready`);
        return r.status === 503 && String(r.body.details.consumer?.message ?? '').includes('migrate') ? r.body : undefined;
      },
      { what: 'not ready, asking for the migrate step' },
    );
    // Postgres answers, but without this build's migrations: the probe says which are missing.
    expect(notReady.details.postgres).toMatchObject({ status: 'down', message: expect.stringContaining('migrations not applied: Migration20261128000000Initial') });
    expect(notReady.details.postgres.message).toContain('(run db:migrate)');
    expect((await getJson(`${url}/health/live`)).status).toBe(200);

    const c = new Client({ connectionString: dbUrl });
    await c.connect();
    const tables = await c.query(`select to_regclass('run_views') as t`);
    await c.end();
    expect(tables.rows[0].t).toBeNull();

    await migrate(dbUrl);
    await waitFor(async () => (await getJson(`${url}/health/ready`)).status === 200, {
      timeoutMs: 30000,
      what: 'ready once migrated',
    });
  });
});
