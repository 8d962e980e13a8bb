import { createKafka } from '@flowruns/messaging';
import { waitFor } from '@flowruns/testing';
import { deadLetterCount, poisonMessages, publishRaw, underLoad, unknownTypeEvent, type FaultSystem } from './kit';

const REPEATS = Number(process.env.FAULT_REPEATS ?? 3);

/** Moves a (stopped) consumer group back to the first offset: everything is delivered again. */
async function rewind(sys: FaultSystem, groupId: string): Promise<void> {
  const admin = createKafka({ brokers: sys.env.KAFKA_BROKERS.split(','), clientId: 'fault-rewind' }).admin();
  await admin.connect();
  try {
    // The group is empty only once the broker noticed its members left.
    await waitFor(
      async () => {
        const [g] = (await admin.describeGroups([groupId])).groups;
        return g.members.length === 0;
      },
      { timeoutMs: 30000, what: `${groupId} empty` },
    );
    await admin.resetOffsets({ groupId, topic: sys.topic, earliest: true });
  } finally {
    await admin.disconnect();
  }
}

/**
 * What the topic may hold besides clean events, under load: duplicates of published events (as an
 * at-least-once relay produces them), whole-topic redeliveries to the projector and to the workers,
 * poison messages (→ dead-letter topic, consumption goes on) and well-formed events of a type no
 * consumer knows (skipped).
 */
describe('duplicates, redeliveries, poison and unknown types on the topic, under load', () => {
  it(`${REPEATS} rounds of each: no duplicate view, no step run twice, poison dead-lettered, consumers never stop`, async () => {
    let poisonSent = 0;
    let duplicatesSent = 0;
    let dlqBefore = 0;
    const { figures } = await underLoad('messages', 'duplicates, redeliveries, poison, unknown types', async ({ sys, load, injected }) => {
      dlqBefore = await deadLetterCount(sys);
      for (let k = 0; k < REPEATS; k++) {
        // Duplicates: copies of up to 200 already published events, with their key and headers.
        const rows = await sys.sql<{ run_id: string; type: string; envelope: unknown }>(
          `select run_id, type, envelope from run_events e
           where not exists (select 1 from run_events_outbox o where o.position = e.position) order by random() limit 200`,
        );
        await publishRaw(sys, rows.map((r) => ({ key: r.run_id, value: JSON.stringify(r.envelope), headers: { 'ce-type': r.type } })));
        duplicatesSent += rows.length;
        injected('duplicate events published (batches of 200)');

        const poison = poisonMessages(sys);
        await publishRaw(sys, [...poison, unknownTypeEvent(sys, 2 * k), unknownTypeEvent(sys, 2 * k + 1)]);
        poisonSent += poison.length;
        injected('poison messages (4 kinds)');
        injected('unknown event types (2)');
        await load.progressed(5);

        // Redelivery of the whole topic to the projector…
        await sys.kill('projector', 0, 'SIGTERM');
        await rewind(sys, sys.env.PROJECTOR_GROUP_ID);
        await sys.start('projector', 0);
        injected('whole topic redelivered to the projector');
        // …and to the workers: every finished run's trigger arrives again.
        await sys.kill('flow-worker', 0, 'SIGTERM');
        await sys.kill('flow-worker', 1, 'SIGTERM');
        await rewind(sys, sys.env.FLOW_WORKER_GROUP_ID);
        await sys.start('flow-worker', 0);
        await sys.start('flow-worker', 1);
        injected('whole topic redelivered to the workers');
        await load.progressed(5);
      }
      // Each poison message is dead-lettered by the projector (live, and the redeliveries add more copies).
      await waitFor(async () => (await deadLetterCount(sys)) >= dlqBefore + poisonSent, { timeoutMs: 30000, what: 'poison dead-lettered' });
    });
    expect(figures.duplicatesOnTopic).toBeGreaterThanOrEqual(duplicatesSent);
  });
});
