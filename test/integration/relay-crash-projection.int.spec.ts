import { ormOptions, sqlRunner } from '@flowruns/database';
import { createKafka, ensureTopics, KafkaBatchConsumer, KafkaPublisher } from '@flowruns/messaging';
import { ProjectionBatchHandler } from '@flowruns/projection';
import { createTestDatabase, testEnv, uniqueName, waitFor } from '@flowruns/testing';
import { FlowStore, OutboxRelay, RunCommands } from '@flowruns/write-model';
import { MikroORM } from '@mikro-orm/postgresql';

/**
 * The whole write → Kafka → read pipeline with a relay killed between publish and mark: the batch
 * is published again (a duplicate on the topic), and the projector skips the copies, so the view
 * is exactly what one delivery gives.
 */
describe('a relay crash between publish and mark', () => {
  it('publishes duplicates that the projector ignores', async () => {
    const db = await createTestDatabase('relaycrash');
    const orm = await MikroORM.init(ormOptions({ url: db.url, entities: [], poolMax: 4 }));
    const kafka = createKafka({ brokers: testEnv().kafkaBrokers, clientId: 'it-relay-crash' });
    const topic = uniqueName('it-relay-crash');
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [
      { topic, numPartitions: 2 },
      { topic: `${topic}.dlq`, numPartitions: 1 },
    ]);
    await admin.disconnect();
    const publisher = new KafkaPublisher(kafka);
    let crashes = 0;
    const relay = new OutboxRelay({
      databaseUrl: db.url,
      topic,
      publisher,
      pollIntervalMs: 100,
      // Dies once after the broker acknowledged the batch and before the rows are marked.
      afterPublish: () => {
        if (crashes++ === 0) throw new Error('killed between publish and mark');
      },
    });
    let duplicates = 0;
    const handler = new ProjectionBatchHandler({
      entityManager: () => orm.em.fork(),
      deadLetters: publisher,
      deadLetterTopic: `${topic}.dlq`,
      consumerGroup: 'it-relay-crash',
    });
    const consumer = new KafkaBatchConsumer(kafka, {
      groupId: uniqueName('it-relay-crash-projector'),
      topics: [topic],
      fromBeginning: true,
      handleBatch: async (batch) => {
        duplicates += (await handler.handle(batch)).duplicates;
      },
    });
    try {
      const commands = new RunCommands({ transactional: (w) => orm.em.fork().transactional((tem) => w(sqlRunner(tem))) });
      const flow = await orm.em.fork().transactional((tem) =>
        new FlowStore(sqlRunner(tem)).create(
          { projectId: 'p', displayName: 'f', tags: [], steps: [{ name: 'a', type: 'transform', settings: {} }] },
          new Date(),
        ),
      );
      if ('code' in flow) throw new Error(flow.code);
      const run = await commands.trigger(flow.id, {
        projectId: 'p',
        payload: {},
        environment: 'PRODUCTION',
        triggeredBy: null,
        parentRunId: null,
        failParentOnFailure: false,
      });
      if ('code' in run) throw new Error(run.code);
      await commands.startStep(run.id, 'a', 'transform');
      await commands.finishStep(run.id, 'a', { status: 'SUCCEEDED', output: 1, durationMs: 7 });
      await commands.succeed(run.id);

      await consumer.start();
      relay.start();
      const view = await waitFor(
        async () => {
          const rows = await orm.em.fork().execute(`select status, version from run_views where id = ?`, [run.id]);
          return rows[0]?.status === 'SUCCEEDED' && duplicates >= 4 ? rows[0] : undefined;
        },
        { what: 'the view after the republished batch', timeoutMs: 40000 },
      );
      expect(crashes).toBeGreaterThanOrEqual(2); // the crash, then the publish that marked
      expect(view).toEqual({ status: 'SUCCEEDED', version: 4 });
      const steps = await orm.em.fork().execute(`select step_name, status, duration_ms from step_views where run_id = ?`, [run.id]);
      expect(steps).toEqual([{ step_name: 'a', status: 'SUCCEEDED', duration_ms: 7 }]);
      const stalls = await orm.em.fork().execute(`select count(*)::int as n from projection_stalls`);
      expect(stalls[0].n).toBe(0);
    } finally {
      await relay.stop();
      await consumer.stop();
      await publisher.close();
      await orm.close(true);
      await db.drop();
    }
  });
});
