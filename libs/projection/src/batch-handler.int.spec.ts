import type { EventEnvelope } from '@flowruns/contracts';
import { ormOptions } from '@flowruns/database';
import {
  consumerLag,
  createKafka,
  ensureTopics,
  KafkaBatchConsumer,
  KafkaPublisher,
  type Admin,
  type Kafka,
  type OutgoingMessage,
} from '@flowruns/messaging';
import { createTestDatabase, testEnv, uniqueName, waitFor } from '@flowruns/testing';
import { MikroORM } from '@mikro-orm/postgresql';
import type { KafkaMessage } from 'kafkajs';
import type { TransactionalEm } from './apply-batch';
import { ProjectionBatchHandler, type BatchOutcome } from './batch-handler';
import { DEAD_LETTER_HEADERS as H } from './dead-letter';
import { fullRunHistory, interleave, RunHistory } from './testing/run-events';

/**
 * The projection behind a real consumer group on a real broker, into a real database. Each test
 * owns its database, topics and group.
 */
interface Harness {
  readonly orm: MikroORM;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly publisher: KafkaPublisher;
  readonly topic: string;
  readonly dlqTopic: string;
  readonly groupId: string;
  readonly outcomes: BatchOutcome[];
  startConsumer(): Promise<void>;
  stopConsumer(): Promise<void>;
  publish(events: readonly EventEnvelope[]): Promise<void>;
  publishRaw(messages: readonly OutgoingMessage[]): Promise<void>;
  version(runId: string): Promise<number | undefined>;
  dump(): Promise<unknown>;
  close(): Promise<void>;
}

const sum = (outcomes: readonly BatchOutcome[], k: 'applied' | 'duplicates' | 'gaps' | 'unknown' | 'deadLettered') =>
  outcomes.reduce((n, o) => n + o[k], 0);

async function harness(
  opts: { entityManager?: (orm: MikroORM) => TransactionalEm; partitions?: number } = {},
): Promise<Harness> {
  const env = testEnv();
  const db = await createTestDatabase('projector');
  const orm = await MikroORM.init(ormOptions({ url: db.url, entities: [], poolMax: 4 }));
  const kafka = createKafka({ brokers: env.kafkaBrokers, clientId: uniqueName('projection-it') });
  const admin = kafka.admin();
  await admin.connect();
  const topic = uniqueName('it-run-events');
  const dlqTopic = `${topic}.dlq`;
  const groupId = uniqueName('it-projector');
  await ensureTopics(admin, [
    { topic, numPartitions: opts.partitions ?? 3 },
    { topic: dlqTopic, numPartitions: 1 },
  ]);
  const publisher = new KafkaPublisher(kafka);
  const dlqPublisher = new KafkaPublisher(kafka);
  const outcomes: BatchOutcome[] = [];
  const handler = new ProjectionBatchHandler({
    entityManager: () => (opts.entityManager ? opts.entityManager(orm) : orm.em.fork()),
    deadLetters: dlqPublisher,
    deadLetterTopic: dlqTopic,
    consumerGroup: groupId,
  });
  let consumer: KafkaBatchConsumer | undefined;

  const h: Harness = {
    orm,
    kafka,
    admin,
    publisher,
    topic,
    dlqTopic,
    groupId,
    outcomes,
    async startConsumer() {
      consumer = new KafkaBatchConsumer(kafka, {
        groupId,
        topics: [topic],
        fromBeginning: true,
        handleBatch: async (batch) => void outcomes.push(await handler.handle(batch)),
      });
      await consumer.start();
    },
    async stopConsumer() {
      await consumer?.stop();
      consumer = undefined;
    },
    publish: (events) =>
      publisher.publish(
        topic,
        events.map((e) => ({ key: e.subject, value: JSON.stringify(e), headers: { 'ce-type': e.type } })),
      ),
    publishRaw: (messages) => publisher.publish(topic, messages),
    async version(runId) {
      const rows = await orm.em.fork().execute<Array<{ version: number }>>('select version from run_views where id = ?', [runId]);
      return rows[0]?.version;
    },
    async dump() {
      const em = orm.em.fork();
      return {
        runs: await em.execute('select to_jsonb(r) as row from run_views r order by id'),
        steps: await em.execute('select to_jsonb(s) as row from step_views s order by run_id, step_name'),
        stalls: await em.execute(`select to_jsonb(s) - 'detected_at' as row from projection_stalls s order by run_id`),
      };
    },
    async close() {
      await h.stopConsumer();
      await publisher.close();
      await dlqPublisher.close();
      await admin.deleteTopics({ topics: [topic, dlqTopic] }).catch(() => undefined);
      await admin.disconnect();
      await orm.close(true);
      await db.drop();
    },
  };
  return h;
}

/** Reads everything on a topic from the beginning until `count` messages arrived. */
async function readTopic(kafka: Kafka, topic: string, count: number): Promise<KafkaMessage[]> {
  const got: KafkaMessage[] = [];
  const consumer = kafka.consumer({ groupId: uniqueName('it-dlq-reader'), allowAutoTopicCreation: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void got.push(message) });
    await waitFor(() => got.length >= count, { timeoutMs: 30000, what: `${count} messages on ${topic}` });
    return got;
  } finally {
    await consumer.disconnect();
  }
}

const header = (m: KafkaMessage, name: string) => m.headers?.[name]?.toString();

describe('ProjectionBatchHandler on a real consumer group', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  it('projects full runs spread over partitions, then ignores the whole topic redelivered', async () => {
    h = await harness();
    const runs = ['run-1', 'run-2', 'run-3', 'run-4'].map((id) => fullRunHistory(id).events);
    await h.startConsumer();
    await h.publish(interleave(...runs));
    await waitFor(async () => (await Promise.all(runs.map((r) => h.version(r[0].subject)))).every((v) => v === 16), {
      timeoutMs: 30000,
      what: 'every run projected to version 16',
    });
    expect(sum(h.outcomes, 'applied')).toBe(64);
    const before = await h.dump();

    // The same events published again (a relay that crashed before marking them)...
    await h.publish(interleave(...runs));
    await waitFor(() => sum(h.outcomes, 'duplicates') >= 64, { timeoutMs: 30000, what: 'republished events seen' });
    // ...and every batch of the topic delivered again to the group (offsets reset, as after a crash
    // before the commit).
    await h.stopConsumer();
    await h.admin.resetOffsets({ groupId: h.groupId, topic: h.topic, earliest: true });
    await h.startConsumer();
    await waitFor(() => sum(h.outcomes, 'duplicates') >= 64 * 3, { timeoutMs: 30000, what: 'redelivered topic seen' });
    await waitFor(async () => (await consumerLag(h.admin, h.groupId, h.topic)) === 0, { what: 'lag 0' });

    expect(sum(h.outcomes, 'applied')).toBe(64);
    expect(sum(h.outcomes, 'gaps')).toBe(0);
    // Including updated_at: a duplicate does not even touch the row.
    expect(await h.dump()).toEqual(before);
  });

  it('stalls the run with a gap and records it, while runs on the same partition go on', async () => {
    // One partition, so both runs arrive in the same batches.
    h = await harness({ partitions: 1 });
    const gap = fullRunHistory('run-gap').events;
    const ok = fullRunHistory('run-ok').events;
    await h.startConsumer();
    await h.publish(interleave(gap.filter((e) => e.seq !== 5), ok));
    await waitFor(async () => (await h.version('run-ok')) === 16, { timeoutMs: 30000, what: 'run-ok projected' });
    await waitFor(async () => (await h.version('run-gap')) === 4, { what: 'run-gap stopped at 4' });
    const stalls = await h.orm.em
      .fork()
      .execute('select run_id, expected_seq, received_seq, event_id, event_type, reason from projection_stalls');
    expect(stalls).toEqual([
      { run_id: 'run-gap', expected_seq: 5, received_seq: 6, event_id: gap[5].id, event_type: gap[5].type, reason: 'gap' },
    ]);
    await waitFor(() => sum(h.outcomes, 'gaps') === 11, { what: 'the 11 events after the gap skipped' });

    // The missing event arrives late: still skipped, never guessed into place.
    await h.publish([gap[4]]);
    await waitFor(() => sum(h.outcomes, 'gaps') === 12, { what: 'late event skipped' });
    expect(await h.version('run-gap')).toBe(4);
  });

  it('dead-letters a non-JSON message and a bad-data envelope with the reason, and applies what follows', async () => {
    h = await harness();
    const run = new RunHistory('run-after-poison');
    run.triggered();
    run.stepStarted('fetch');
    const bad = new RunHistory('run-bad-data');
    const badEnvelope = bad.addRaw('flowrun.step.started.v1', { stepName: '', attempt: 'one' });

    await h.startConsumer();
    // All on the good run's key, so the poison sits on the same partition, before the good events.
    await h.publishRaw([
      { key: 'run-after-poison', value: '{"this is": not json', headers: { 'ce-type': 'flowrun.triggered.v1' } },
      { key: 'run-after-poison', value: JSON.stringify(badEnvelope), headers: {} },
      ...run.events.map((e) => ({ key: e.subject, value: JSON.stringify(e), headers: {} })),
    ]);

    await waitFor(async () => (await h.version('run-after-poison')) === 2, { timeoutMs: 30000, what: 'good events applied' });
    const dead = await readTopic(h.kafka, h.dlqTopic, 2);
    expect(dead).toHaveLength(2);
    const [notJson, badData] = dead;

    expect(notJson.value?.toString()).toBe('{"this is": not json');
    expect(notJson.key?.toString()).toBe('run-after-poison');
    expect(header(notJson, H.reason)).toMatch(/^not JSON: /);
    expect(header(notJson, H.topic)).toBe(h.topic);
    expect(header(notJson, H.offset)).toBe('0');
    expect(header(notJson, H.key)).toBe('run-after-poison');
    expect(header(notJson, H.consumerGroup)).toBe(h.groupId);
    expect(header(notJson, H.valueEncoding)).toBe('utf8');
    expect(header(notJson, 'ce-type')).toBe('flowrun.triggered.v1');

    expect(JSON.parse(badData.value?.toString() ?? '')).toEqual(badEnvelope);
    expect(header(badData, H.reason)).toMatch(/^bad data for flowrun\.step\.started\.v1: /);
    expect(header(badData, H.reason)).toContain('stepType');
    expect(header(badData, H.offset)).toBe('1');
    expect(header(badData, H.partition)).toBe(header(notJson, H.partition));

    // The partition moved on: its offsets are committed past the poison.
    await waitFor(async () => (await consumerLag(h.admin, h.groupId, h.topic)) === 0, { what: 'lag 0' });
    expect(sum(h.outcomes, 'deadLettered')).toBe(2);
    expect(await h.version('run-bad-data')).toBeUndefined();
  });

  it('skips an event of an unknown type without stalling the run', async () => {
    h = await harness();
    const run = new RunHistory('run-unknown');
    run.triggered();
    run.addRaw('flowrun.commented.v7', { by: 'someone' });
    run.stepStarted('fetch');
    run.stepSucceeded('fetch');
    await h.startConsumer();
    await h.publish(run.events);
    await waitFor(async () => (await h.version('run-unknown')) === 4, { timeoutMs: 30000, what: 'run projected past the unknown event' });
    expect(sum(h.outcomes, 'unknown')).toBe(1);
    expect(sum(h.outcomes, 'gaps')).toBe(0);
    expect(sum(h.outcomes, 'deadLettered')).toBe(0);
  });

  it('redelivers a batch whose database transaction failed (retriable), losing and doubling nothing', async () => {
    let failuresLeft = 2;
    let attempts = 0;
    h = await harness({
      entityManager: (orm) => ({
        transactional: (work) =>
          orm.em.fork().transactional(async (tem) => {
            attempts++;
            const out = await work(tem);
            if (failuresLeft > 0) {
              failuresLeft--;
              throw Object.assign(new Error('Connection terminated unexpectedly'), { code: '08006' });
            }
            return out;
          }),
      }),
    });
    const run = fullRunHistory('run-retry').events;
    await h.startConsumer();
    await h.publish(run);
    await waitFor(async () => (await h.version('run-retry')) === 16, { timeoutMs: 60000, what: 'run projected after retries' });
    expect(attempts).toBeGreaterThanOrEqual(3);
    expect(sum(h.outcomes, 'applied')).toBe(16);
    expect(sum(h.outcomes, 'duplicates')).toBe(0);
    const steps = await h.orm.em.fork().execute('select count(*)::int as n from step_views');
    expect(steps).toEqual([{ n: 3 }]);
  });
});
