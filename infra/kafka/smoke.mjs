#!/usr/bin/env node
// Smoke test of kafkajs against the local broker (infra/kafka/kafka.sh start first).
//   node infra/kafka/smoke.mjs            # KAFKA_BROKERS defaults to 127.0.0.1:9092
// Uses its own throw-away topic and groups (unique per run) and deletes the topic at the end, so
// it can be rerun against the same broker. Prints one line per check and a closing
// "smoke: N passed, N failed" line; exits non-zero on any failure or after SMOKE_TIMEOUT_MS.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const kafkajs = (await import('kafkajs')).default;
const { Kafka, logLevel, Partitioners } = kafkajs;
const kafkajsVersion = createRequire(import.meta.url)('kafkajs/package.json').version;

const brokers = (process.env.KAFKA_BROKERS || '127.0.0.1:9092').split(',').map((b) => b.trim());
const timeoutMs = Number(process.env.SMOKE_TIMEOUT_MS || 90_000);
const runId = `${Date.now().toString(36)}-${process.pid}`;
const topic = `smoke-${runId}`;
const PARTITIONS = 3;
const KEYS = ['run-a', 'run-b', 'run-c', 'run-d', 'run-e'];
const PER_KEY = 4;

const kafka = new Kafka({
  clientId: `smoke-${runId}`,
  brokers,
  logLevel: process.env.SMOKE_DEBUG ? logLevel.INFO : logLevel.NOTHING,
  retry: { retries: 5 },
});

let passed = 0;
let failed = 0;
const t0 = Date.now();
async function check(name, fn) {
  const s = Date.now();
  try {
    await fn();
    passed += 1;
    console.log(`ok   ${name} (${Date.now() - s}ms)`);
  } catch (err) {
    failed += 1;
    console.log(`FAIL ${name} (${Date.now() - s}ms): ${err.stack ?? err}`);
    throw err;
  }
}

const killer = setTimeout(() => {
  console.log(`FAIL smoke timed out after ${timeoutMs}ms`);
  console.log(`smoke: ${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, timeoutMs);

const hdr = (m, k) => m.headers?.[k]?.toString();

// Consumes from `topic` with a fresh consumer in `groupId` until `until(received)` is true.
async function consume(groupId, { fromBeginning, until, commit = true }) {
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 500, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
  const received = [];
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning });
  await new Promise((resolve, reject) => {
    consumer
      .run({
        autoCommit: false,
        eachMessage: async ({ topic: t, partition, message }) => {
          received.push({ partition, offset: message.offset, key: message.key?.toString(), value: JSON.parse(message.value.toString()), headers: message.headers });
          if (commit) {
            await consumer.commitOffsets([{ topic: t, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
          }
          if (until(received)) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return received;
}

function assertPerKeyOrder(received, expectSeqs) {
  const byKey = new Map();
  for (const m of received) {
    if (!byKey.has(m.key)) byKey.set(m.key, { partition: m.partition, seqs: [] });
    const e = byKey.get(m.key);
    assert.equal(m.partition, e.partition, `key ${m.key} seen on two partitions`);
    e.seqs.push(m.value.seq);
  }
  for (const [key, seqs] of Object.entries(expectSeqs)) {
    assert.deepEqual(byKey.get(key)?.seqs, seqs, `order for key ${key}`);
  }
}

const admin = kafka.admin();
try {
  await admin.connect();

  await check(`admin createTopics ${topic} (${PARTITIONS} partitions)`, async () => {
    const created = await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }], waitForLeaders: true });
    assert.equal(created, true);
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.equal(meta.topics[0].partitions.length, PARTITIONS);
  });

  await check('auto topic creation is off (producing to an unknown topic fails)', async () => {
    const p = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: true, retry: { retries: 1 } });
    await p.connect();
    try {
      await assert.rejects(p.send({ topic: `${topic}-nope`, acks: -1, messages: [{ value: 'x' }] }));
    } finally {
      await p.disconnect();
    }
    assert.ok(!(await admin.listTopics()).includes(`${topic}-nope`));
  });

  const expected = Object.fromEntries(KEYS.map((k) => [k, Array.from({ length: PER_KEY }, (_, i) => i)]));
  const total = KEYS.length * PER_KEY;

  await check(`idempotent producer (acks -1, maxInFlightRequests 1) sends ${total} keyed messages with headers`, async () => {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    try {
      for (let seq = 0; seq < PER_KEY; seq += 1) {
        const res = await producer.send({
          topic,
          acks: -1,
          messages: KEYS.map((key) => ({
            key,
            value: JSON.stringify({ runId: key, seq }),
            headers: { 'event-type': 'RunProgressed', 'correlation-id': `${key}-${seq}` },
          })),
        });
        assert.ok(res.every((r) => r.errorCode === 0));
      }
    } finally {
      await producer.disconnect();
    }
    const offsets = await admin.fetchTopicOffsets(topic);
    assert.equal(offsets.reduce((n, p) => n + Number(p.high), 0), total);
  });

  const g1 = `smoke-g1-${runId}`;
  await check(`consumer group ${g1} reads all in per-key order and commits`, async () => {
    const got = await consume(g1, { fromBeginning: true, until: (r) => r.length >= total });
    assert.equal(got.length, total);
    assertPerKeyOrder(got, expected);
    for (const m of got) {
      assert.equal(hdr(m, 'event-type'), 'RunProgressed');
      assert.equal(hdr(m, 'correlation-id'), `${m.key}-${m.value.seq}`);
    }
  });

  await check(`committed offsets of ${g1} equal the high watermarks`, async () => {
    const high = Object.fromEntries((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.high]));
    const [committed] = await admin.fetchOffsets({ groupId: g1, topics: [topic] });
    for (const p of committed.partitions) {
      // A partition that got no message has nothing to commit: kafkajs reports '-1' there.
      assert.equal(p.offset, high[p.partition] === '0' ? '-1' : high[p.partition], `partition ${p.partition}`);
    }
    assert.ok(committed.partitions.some((p) => p.offset !== '-1'));
  });

  const gtx = `smoke-gtx-${runId}`;
  await check('transactions: sendOffsets + commit visible, aborted batch hidden (read_committed)', async () => {
    const tx = kafka.producer({ transactionalId: `smoke-tx-${runId}`, idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await tx.connect();
    try {
      const ok = await tx.transaction();
      await ok.send({ topic, acks: -1, messages: [0, 1].map((i) => ({ key: 'run-tx', value: JSON.stringify({ runId: 'run-tx', seq: i, tx: 'commit' }) })) });
      // Exactly-once style: commit a consumer group's offsets inside the transaction.
      await ok.sendOffsets({ consumerGroupId: gtx, topics: [{ topic, partitions: [{ partition: 0, offset: '1' }] }] });
      await ok.commit();
      const bad = await tx.transaction();
      await bad.send({ topic, acks: -1, messages: [{ key: 'run-tx', value: JSON.stringify({ runId: 'run-tx', seq: 99, tx: 'abort' }) }] });
      await bad.abort();
      // A plain message on the same key/partition after the aborted batch marks the end.
      const again = await tx.transaction();
      await again.send({ topic, acks: -1, messages: [{ key: 'run-tx', value: JSON.stringify({ runId: 'run-tx', seq: 2, tx: 'commit', last: true }) }] });
      await again.commit();
    } finally {
      await tx.disconnect();
    }
    const [committed] = await admin.fetchOffsets({ groupId: gtx, topics: [topic] });
    assert.equal(committed.partitions.find((p) => p.partition === 0).offset, '1', 'offset committed by sendOffsets');
  });

  await check(`group ${g1} resumes from its committed offsets (sees only the new messages)`, async () => {
    const got = await consume(g1, { fromBeginning: true, until: (r) => r.some((m) => m.value.last) });
    assert.deepEqual(got.map((m) => m.value.seq), [0, 1, 2]);
    assert.ok(got.every((m) => m.key === 'run-tx' && m.value.tx === 'commit'));
  });

  const g2 = `smoke-g2-${runId}`;
  await check(`second group ${g2} reads everything from the beginning`, async () => {
    const got = await consume(g2, { fromBeginning: true, commit: false, until: (r) => r.length >= total + 3 });
    assert.equal(got.length, total + 3);
    assertPerKeyOrder(got, { ...expected, 'run-tx': [0, 1, 2] });
  });

  await check('admin listGroups / describeGroups / describeConfigs / offsets by timestamp / deleteGroups', async () => {
    const { groups } = await admin.listGroups();
    assert.ok([g1, g2].every((g) => groups.some((x) => x.groupId === g)));
    const described = await admin.describeGroups([g1]);
    assert.equal(described.groups[0].state, 'Empty');
    const { resources } = await admin.describeConfigs({ resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic }], includeSynonyms: false });
    assert.ok(resources[0].configEntries.some((e) => e.configName === 'cleanup.policy'));
    const byTs = await admin.fetchTopicOffsetsByTimestamp(topic, t0 - 60_000);
    assert.equal(byTs.length, PARTITIONS);
    const res = await admin.deleteGroups([g1, g2, gtx]);
    assert.ok(res.every((r) => r.errorCode === 0));
  });

  await check(`admin deleteTopics ${topic}`, async () => {
    await admin.deleteTopics({ topics: [topic] });
    assert.ok(!(await admin.listTopics()).includes(topic));
  });
} catch {
  // already reported by check(); still remove the throw-away topic
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
} finally {
  await admin.disconnect().catch(() => {});
  clearTimeout(killer);
}

console.log(`kafkajs ${kafkajsVersion} against ${brokers.join(',')} in ${Date.now() - t0}ms`);
console.log(`smoke: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
