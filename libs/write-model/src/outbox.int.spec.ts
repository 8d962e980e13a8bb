import { parseEnvelope, type EventEnvelope } from '@flowruns/contracts';
import { ormOptions, sqlRunner } from '@flowruns/database';
import { createKafka, ensureTopics, KafkaPublisher, type Kafka } from '@flowruns/messaging';
import { createTestDatabase, testEnv, uniqueName, waitFor } from '@flowruns/testing';
import { MikroORM } from '@mikro-orm/postgresql';
import type { Consumer } from 'kafkajs';
import { FlowStore } from './flows';
import { OutboxRelay } from './relay';
import { RunCommands } from './run-commands';

/**
 * Reads a topic from the beginning in its own group and collects what the log holds, in log order
 * per partition. A consumer's own redelivery (a rebalance before its commit) reads the same offset
 * again; it is folded here, so what remains is exactly what the relay wrote.
 */
async function collect(kafka: Kafka, topic: string): Promise<{ consumer: Consumer; seen: EventEnvelope[] }> {
  const consumer = kafka.consumer({ groupId: uniqueName('it-reader') });
  const seen: EventEnvelope[] = [];
  const offsets = new Set<string>();
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      if (offsets.has(`${partition}:${message.offset}`)) return;
      offsets.add(`${partition}:${message.offset}`);
      const p = parseEnvelope(message.value);
      if (p.kind === 'known') seen.push(p.envelope as EventEnvelope);
    },
  });
  return { consumer, seen };
}

describe('outbox relay (real Postgres + Kafka)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let orm: MikroORM;
  let kafka: Kafka;
  let commands: RunCommands;
  let flowId: string;
  const projectId = 'proj_outbox';

  beforeAll(async () => {
    db = await createTestDatabase('outbox');
    orm = await MikroORM.init(ormOptions({ url: db.url, entities: [], poolMax: 4 }));
    kafka = createKafka({ brokers: testEnv().kafkaBrokers, clientId: 'it-outbox' });
    commands = new RunCommands({ transactional: (w) => orm.em.fork().transactional((tem) => w(sqlRunner(tem))) });
    const flow = await orm.em
      .fork()
      .transactional((tem) =>
        new FlowStore(sqlRunner(tem)).create(
          { projectId, displayName: 'Outbox flow', tags: ['it'], steps: [{ name: 'a', type: 'transform', settings: {} }] },
          new Date(),
        ),
      );
    if ('code' in flow) throw new Error(flow.code);
    flowId = flow.id;
  });

  afterAll(async () => {
    await orm?.close(true);
    await db?.drop();
  });

  const newTopic = async () => {
    const topic = uniqueName('it-outbox');
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic, numPartitions: 3 }]);
    await admin.disconnect();
    return topic;
  };

  /** One full run: trigger, a step, success. Returns the run id. */
  const runOnce = async (): Promise<string> => {
    const run = await commands.trigger(flowId, {
      projectId,
      payload: { hello: 'world' },
      environment: 'PRODUCTION',
      triggeredBy: null,
      parentRunId: null,
      failParentOnFailure: false,
    });
    if ('code' in run) throw new Error(run.code);
    for (const r of [
      await commands.startStep(run.id, 'a', 'transform'),
      await commands.finishStep(run.id, 'a', { status: 'SUCCEEDED', output: { ok: 1 }, durationMs: 5 }),
      await commands.succeed(run.id),
    ]) {
      if ('code' in r) throw new Error(r.code);
    }
    return run.id;
  };

  it("publishes a command's events to Kafka exactly in seq order, keyed by run id", async () => {
    const topic = await newTopic();
    const publisher = new KafkaPublisher(kafka);
    const relay = new OutboxRelay({ databaseUrl: db.url, topic, publisher, pollIntervalMs: 100 });
    const reader = await collect(kafka, topic);
    // Appended before the relay starts, so one batch holds positions 1..12: a relay that sorted
    // positions as text (10 before 9) would publish them out of order (a regression this pins).
    const runIds = [await runOnce(), await runOnce(), await runOnce()];
    relay.start();
    try {
      await waitFor(() => reader.seen.length >= 12, { what: '12 events on the topic', timeoutMs: 30000 });
      for (const runId of runIds) {
        const events = reader.seen.filter((e) => e.subject === runId);
        expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
        expect(events.map((e) => e.type)).toEqual([
          'flowrun.triggered.v1',
          'flowrun.step.started.v1',
          'flowrun.step.succeeded.v1',
          'flowrun.succeeded.v1',
        ]);
      }
      // No step payload travels in an event: only the reference to the execution-data store.
      expect(JSON.stringify(reader.seen)).not.toContain('world');
      const unpublished = await orm.em.fork().execute('select count(*)::int as n from run_events_outbox');
      expect(unpublished[0].n).toBe(0);
    } finally {
      await relay.stop();
      await reader.consumer.disconnect();
      await publisher.close();
    }
  });

  it('publishes nothing for a command that rolled back', async () => {
    const topic = await newTopic();
    const publisher = new KafkaPublisher(kafka);
    const relay = new OutboxRelay({ databaseUrl: db.url, topic, publisher, pollIntervalMs: 100 });
    const reader = await collect(kafka, topic);
    // Drain the log first so the topic receives only what this test appends.
    relay.start();
    await waitFor(async () => {
      const r = await orm.em.fork().execute('select count(*)::int as n from run_events_outbox');
      return r[0].n === 0;
    });
    try {
      const runId = await runOnce();
      // A transaction that appends an event and then fails: nothing of it may ever be published.
      await expect(
        orm.em.fork().transactional(async (tem) => {
          const { appendToRun } = await import('./run-store');
          await appendToRun(sqlRunner(tem), runId, () => ({ type: 'ArchiveRun' }), { now: new Date() });
          throw new Error('boom after append');
        }),
      ).rejects.toThrow('boom after append');
      // A marker run after the rolled-back one: once it is on the topic, the relay has passed the gap.
      const marker = await runOnce();
      await waitFor(() => reader.seen.some((e) => e.subject === marker && e.seq === 4), { what: 'marker run', timeoutMs: 30000 });
      expect(reader.seen.filter((e) => e.type === 'flowrun.archived.v1')).toHaveLength(0);
      expect(reader.seen.filter((e) => e.subject === runId).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    } finally {
      await relay.stop();
      await reader.consumer.disconnect();
      await publisher.close();
    }
  });

  it('republishes a batch when the relay dies between publish and mark (a duplicate, never a loss)', async () => {
    const topic = await newTopic();
    const publisher = new KafkaPublisher(kafka);
    // Wait until earlier tests' events are marked, so this relay sees only the new run.
    await waitFor(async () => {
      const r = await orm.em.fork().execute('select count(*)::int as n from run_events_outbox');
      return r[0].n === 0;
    });
    const runId = await runOnce();
    let crashes = 0;
    const crashing = new OutboxRelay({
      databaseUrl: db.url,
      topic,
      publisher,
      pollIntervalMs: 100,
      afterPublish: () => {
        crashes++;
        throw new Error('killed between publish and mark');
      },
    });
    const reader = await collect(kafka, topic);
    crashing.start();
    await waitFor(() => crashes >= 1 && reader.seen.filter((e) => e.subject === runId).length >= 4, {
      what: 'first publish',
      timeoutMs: 30000,
    });
    await crashing.stop();
    const healthy = new OutboxRelay({ databaseUrl: db.url, topic, publisher, pollIntervalMs: 100 });
    healthy.start();
    try {
      await waitFor(async () => {
        const r = await orm.em.fork().execute('select count(*)::int as n from run_events_outbox');
        return r[0].n === 0;
      });
      await waitFor(() => reader.seen.filter((e) => e.subject === runId).length >= 8, { what: 'republished batch' });
      const seqs = reader.seen.filter((e) => e.subject === runId).map((e) => e.seq);
      // Every event at least twice, each copy in order: the projector skips seq <= version.
      expect(seqs.slice(0, 4)).toEqual([1, 2, 3, 4]);
      expect(new Set(seqs)).toEqual(new Set([1, 2, 3, 4]));
      const ids = reader.seen.filter((e) => e.subject === runId).map((e) => e.id);
      expect(new Set(ids).size).toBe(4);
    } finally {
      await healthy.stop();
      await reader.consumer.disconnect();
      await publisher.close();
    }
  });

  it('is woken after the commit without any NOTIFY in the transaction: in process when it leads, by a coalesced NOTIFY from a standby', async () => {
    const topic = await newTopic();
    const publisher = new KafkaPublisher(kafka);
    // A minute between polls: within the deadlines below only a wake-up can explain a publish.
    const leader = new OutboxRelay({ databaseUrl: db.url, topic, publisher, pollIntervalMs: 60000 });
    const standby = new OutboxRelay({ databaseUrl: db.url, topic, publisher, pollIntervalMs: 60000 });
    const reader = await collect(kafka, topic);
    leader.start();
    await waitFor(() => leader.status().leader, { what: 'the leader' });
    // Drains what earlier tests left (its first batch runs at start), then sleeps for the poll.
    await waitFor(async () => {
      const r = await orm.em.fork().execute('select count(*)::int as n from run_events_outbox');
      return r[0].n === 0;
    });
    standby.start();
    const statements: string[] = [];
    /** The command service's wiring: the runner's hook, then the wake-up once the commit is done. */
    const signalling = (relay: OutboxRelay) =>
      new RunCommands({
        transactional: async (work) => {
          let appended = false;
          const result = await orm.em.fork().transactional((tem) => {
            const sql = sqlRunner(tem);
            return work({
              execute: (text, params) => {
                statements.push(text);
                return sql.execute(text, params);
              },
              outboxAppended: () => {
                appended = true;
              },
            });
          });
          if (appended) relay.appendCommitted();
          return result;
        },
      });
    const runWith = async (c: RunCommands) => {
      const run = await c.trigger(flowId, {
        projectId,
        payload: null,
        environment: 'PRODUCTION',
        triggeredBy: null,
        parentRunId: null,
        failParentOnFailure: false,
      });
      if ('code' in run) throw new Error(run.code);
      const step = await c.startStep(run.id, 'a', 'transform');
      if ('code' in step) throw new Error(step.code);
      return run.id;
    };
    try {
      const inProcess = await runWith(signalling(leader));
      await waitFor(() => reader.seen.filter((e) => e.subject === inProcess).length === 2, { what: 'in-process wake-up', timeoutMs: 5000 });

      expect(standby.status().leader).toBe(false);
      const viaNotify = await runWith(signalling(standby));
      await waitFor(() => reader.seen.filter((e) => e.subject === viaNotify).length === 2, { what: 'NOTIFY from the standby', timeoutMs: 5000 });
      expect(standby.status().published).toBe(0);
      expect(statements.some((q) => q.includes('pg_notify'))).toBe(false);
    } finally {
      await standby.stop();
      await leader.stop();
      await reader.consumer.disconnect();
      await publisher.close();
    }
  });

  it('lets only one relay publish at a time (advisory lock), the other takes over when it stops', async () => {
    const topic = await newTopic();
    const publisher = new KafkaPublisher(kafka);
    const a = new OutboxRelay({ databaseUrl: db.url, topic, publisher, pollIntervalMs: 100 });
    const b = new OutboxRelay({ databaseUrl: db.url, topic, publisher, pollIntervalMs: 100 });
    a.start();
    await waitFor(() => a.status().leader, { what: 'a leads' });
    b.start();
    try {
      await runOnce();
      await waitFor(() => a.status().published > 0, { what: 'a publishes' });
      expect(b.status().leader).toBe(false);
      expect(b.status().published).toBe(0);
      await a.stop();
      await waitFor(() => b.status().leader, { what: 'b takes over' });
      await runOnce();
      await waitFor(() => b.status().published >= 4, { what: 'b publishes' });
    } finally {
      await a.stop();
      await b.stop();
      await publisher.close();
    }
  });
});
