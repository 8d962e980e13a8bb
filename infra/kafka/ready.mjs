#!/usr/bin/env node
// Readiness probe + topic bootstrap for a Kafka broker (used by infra/kafka/kafka.sh start, and
// usable on its own against any broker, e.g. in CI: `node infra/kafka/ready.mjs`).
//
// 1. Retries an admin describeCluster() against KAFKA_BROKERS until it answers with a broker and an
//    active controller, or until KAFKA_READY_TIMEOUT_MS runs out (exit 1). If KAFKA_PID is set
//    and that process dies meanwhile, gives up at once (exit 1).
// 2. Creates the application topics if they are missing (the broker has auto-create disabled):
//    KAFKA_TOPIC (partitions KAFKA_TOPIC_PARTITIONS) and its dead-letter topic KAFKA_DLQ_TOPIC
//    (partitions KAFKA_DLQ_TOPIC_PARTITIONS). Set KAFKA_TOPIC to an empty string to skip this.
// 3. Prints one line when ready and exits 0.
//
// Exit codes: 0 ready, 1 not ready / topic error, 2 bad configuration, 3 kafkajs not installed.

const env = process.env;
const started = Date.now();

function intEnv(name, dflt, min = 1) {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    console.error(`ready: ${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

const brokers = (env.KAFKA_BROKERS || '127.0.0.1:9092')
  .split(',')
  .map((b) => b.trim())
  .filter(Boolean);
const timeoutMs = Math.max(intEnv('KAFKA_READY_TIMEOUT_MS', 60_000, -1e12), 1_000);
const deadline = started + timeoutMs;
const watchPid = env.KAFKA_PID ? Number(env.KAFKA_PID) : undefined;
const topic = env.KAFKA_TOPIC ?? 'flow-run-events';
const topicPartitions = intEnv('KAFKA_TOPIC_PARTITIONS', 12);
const dlqTopic = env.KAFKA_DLQ_TOPIC || `${topic}.dlq`;
// One partition for the dead-letter topic: low volume, and a total order is the easiest to replay.
const dlqPartitions = intEnv('KAFKA_DLQ_TOPIC_PARTITIONS', 1);

let kafkajs;
try {
  kafkajs = (await import('kafkajs')).default;
} catch (err) {
  console.error(`ready: cannot load kafkajs (${err.code ?? err.message}); run \`npm ci\` at the repo root first`);
  process.exit(3);
}
const { Kafka, logLevel } = kafkajs;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pidAlive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
};

function client(connectionTimeout, requestTimeout) {
  return new Kafka({
    clientId: 'flowruns-kafka-ready',
    brokers,
    connectionTimeout,
    requestTimeout,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  });
}

// ---- 1. wait for the broker -------------------------------------------------------------------
let admin;
let cluster;
let lastErr;
let attempts = 0;
for (;;) {
  attempts += 1;
  const left = deadline - Date.now();
  const candidate = client(Math.min(1_000, Math.max(left, 100)), Math.min(5_000, Math.max(left, 100)));
  const a = candidate.admin();
  try {
    await a.connect();
    const c = await a.describeCluster();
    if (c.brokers.length > 0 && c.controller !== null && c.controller !== undefined && c.controller >= 0) {
      admin = a;
      cluster = c;
      break;
    }
    lastErr = new Error(`cluster not ready yet: ${c.brokers.length} broker(s), controller ${c.controller}`);
  } catch (err) {
    lastErr = err;
  }
  await a.disconnect().catch(() => {});
  if (watchPid !== undefined && !pidAlive(watchPid)) {
    console.error(`ready: broker process ${watchPid} exited (last probe error: ${lastErr?.message})`);
    process.exit(1);
  }
  if (Date.now() + 250 >= deadline) {
    console.error(
      `ready: ${brokers.join(',')} not ready after ${Date.now() - started}ms and ${attempts} attempts: ${lastErr?.message}`,
    );
    process.exit(1);
  }
  await sleep(250);
}

// ---- 2. topics --------------------------------------------------------------------------------
const summary = [];
try {
  if (topic !== '') {
    const wanted = [
      { topic, numPartitions: topicPartitions },
      { topic: dlqTopic, numPartitions: dlqPartitions },
    ];
    const existing = new Set(await admin.listTopics());
    const missing = wanted.filter((t) => !existing.has(t.topic));
    if (missing.length > 0) {
      await admin.createTopics({
        topics: missing.map((t) => ({ ...t, replicationFactor: 1 })),
        waitForLeaders: true,
        timeout: Math.max(deadline - Date.now(), 5_000),
      });
    }
    const meta = await admin.fetchTopicMetadata({ topics: wanted.map((t) => t.topic) });
    for (const want of wanted) {
      const got = meta.topics.find((t) => t.name === want.topic);
      const n = got ? got.partitions.length : 0;
      const how = missing.includes(want) ? 'created' : 'exists';
      if (n !== want.numPartitions) {
        console.error(
          `ready: warning: topic ${want.topic} has ${n} partitions, configured ${want.numPartitions} (left as is)`,
        );
      }
      summary.push(`${want.topic}[${n}, ${how}]`);
    }
  }
} catch (err) {
  console.error(`ready: broker answers but topic setup failed: ${err.message}`);
  await admin.disconnect().catch(() => {});
  process.exit(1);
}
await admin.disconnect().catch(() => {});

// ---- 3. one line ------------------------------------------------------------------------------
console.log(
  `kafka ready at ${brokers.join(',')} (cluster ${cluster.clusterId}, controller ${cluster.controller}) ` +
    `after ${Date.now() - started}ms/${attempts} probe(s)` +
    (summary.length ? `; topics ${summary.join(' ')}` : ''),
);
