import { createKafka } from '@flowruns/messaging';
import { BenchDatabase } from './db';
import { rawBulkWrite, rawConsume, RawPurgeDelete, rawViewInsert } from './raw';
import { seed } from './seed';
import { benchEnv, createTopic, deleteTopics } from './system';
import { uniqueName } from './util';

// The raw limits measure plain Postgres and Kafka work; these tests check that each does the work
// it names, on the rows it names, and leaves the benchmark's own tables as they were.
describe('raw limits (benchmark harness)', () => {
  const project = 'raw_limits';
  let db: BenchDatabase;

  beforeAll(async () => {
    db = await BenchDatabase.create(benchEnv().serverUrl, 'rawspec');
    await seed(db, { projectId: project, from: 0, to: 60, baseMs: Date.now() - 86_400_000, spacingMs: 1000, flows: 3, steps: 3, status: 'FAILED', writeModel: true, events: true, published: true, views: true });
  });

  afterAll(async () => {
    await db?.drop();
  });

  const snapshot = async () =>
    db.one<{ streams: string; views: string; events: number; data: number }>(
      `select (select string_agg(run_id || ':' || version, ',' order by run_id) from run_streams) as streams,
              (select string_agg(id || ':' || status || ':' || version, ',' order by id) from run_views) as views,
              (select count(*)::int from run_events) as events,
              (select count(*)::int from execution_data) as data`,
    );

  const rawTables = async () =>
    (await db.q<{ relname: string }>(`select relname from pg_class where relname like 'raw\\_%' and relkind = 'r'`)).map((r) => r.relname);

  it('the bulk write appends one event per run in pages, on copies, and drops them', async () => {
    const before = await snapshot();
    const raw = await rawBulkWrite(db, project, 50, { page: 20, inFlight: 2 });
    expect(raw.runs).toBe(50);
    expect(raw.runsPerS).toBeGreaterThan(0);
    expect(raw.envelopeBytes).toBeGreaterThan(100);
    expect(await snapshot()).toEqual(before);
    expect(await rawTables()).toEqual([]);
  });

  it('the bulk write refuses a project with fewer runs than asked (a figure over fewer runs would be wrong)', async () => {
    await expect(rawBulkWrite(db, project, 61, { page: 20, inFlight: 2 })).rejects.toThrow('60 of 61 runs copied');
    expect(await rawTables()).toEqual([]);
  });

  it('the purge delete deletes every record of the oldest runs from a copy, in batches', async () => {
    const before = await snapshot();
    const purge = await RawPurgeDelete.copy(db, project, 30);
    expect(await rawTables()).toEqual(['raw_execution_data']);
    const raw = await purge.deleteAll(7);
    expect(raw).toMatchObject({ runs: 30, records: 30 * 4 });
    expect(raw.runsPerS).toBeGreaterThan(0);
    expect(await snapshot()).toEqual(before);
    expect(await rawTables()).toEqual([]);
  });

  it('the view insert writes every run and step view row into an empty read model', async () => {
    const raw = await rawViewInsert(db, { runs: 'run_views', steps: 'step_views' }, 25);
    expect(raw.rows).toBe(60 + 60 * 3);
    expect(raw.rowsPerS).toBeGreaterThan(0);
  });

  it('the consumer reads a topic from the beginning to its last message', async () => {
    const topic = uniqueName('bench-raw-spec');
    await createTopic(topic, 3);
    const kafka = createKafka({ brokers: benchEnv().kafkaBrokers, clientId: 'raw-spec' });
    const producer = kafka.producer();
    await producer.connect();
    try {
      await producer.send({ topic, acks: -1, messages: Array.from({ length: 120 }, (_, i) => ({ key: `k${i % 7}`, value: `v${i}` })) });
      const raw = await rawConsume(topic, 120);
      expect(raw.messages).toBe(120);
      expect(raw.messagesPerS).toBeGreaterThan(0);
    } finally {
      await producer.disconnect();
      await deleteTopics([topic, `${topic}.dlq`]);
    }
  });
});
