import {
  Kafka,
  logLevel,
  type Admin,
  type Consumer,
  type IHeaders,
  type LogEntry,
  type Producer,
} from 'kafkajs';
import type { Logger } from 'pino';
import { componentLogger } from '@flowruns/platform';
import { javaCompatiblePartitioner } from './partitioner';
import { installRecordCodec } from './record-codec';
import type {
  BatchConsumer,
  BatchConsumerOptions,
  EventPublisher,
  IncomingMessage,
  OutgoingMessage,
} from './ports';

// Before kafkajs builds its first request: records encoded, checksummed and decoded faster, the same results.
installRecordCodec();

export interface KafkaClientOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
}

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** kafkajs logs through pino, as structured fields. */
const logCreator = (log: Logger) => () => (entry: LogEntry) => {
  const { message, ...extra } = entry.log;
  const level = LEVELS[entry.level] ?? 'info';
  // kafkajs reports every retried connection at ERROR; they are expected while a broker restarts.
  log[level === 'error' ? 'warn' : level]({ kafkajs: entry.namespace, ...extra }, message);
};

export function createKafka(opts: KafkaClientOptions): Kafka {
  return new Kafka({
    clientId: opts.clientId,
    brokers: [...opts.brokers],
    logLevel: logLevel.WARN,
    logCreator: logCreator(componentLogger('kafkajs')),
    connectionTimeout: 3000,
    requestTimeout: 30000,
    retry: { initialRetryTime: 200, retries: 8, maxRetryTime: 5000 },
  });
}

const toHeaders = (h: IHeaders | undefined): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? String(v[0]) : v.toString();
  }
  return out;
};

/** Idempotent producer, acks from all in-sync replicas, one request in flight so order holds. */
export class KafkaPublisher implements EventPublisher {
  private readonly producer: Producer;
  private connected?: Promise<void>;

  constructor(kafka: Kafka) {
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // The Java client's partitions (kafkajs's DefaultPartitioner's), computed faster.
      createPartitioner: javaCompatiblePartitioner,
    });
  }

  async publish(topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    this.connected ??= this.producer.connect().catch((e) => {
      this.connected = undefined;
      throw e;
    });
    await this.connected;
    await this.producer.send({
      topic,
      acks: -1,
      messages: messages.map((m) => ({ key: m.key, value: m.value, headers: { ...m.headers } })),
    });
  }

  async close(): Promise<void> {
    if (this.connected) await this.producer.disconnect();
    this.connected = undefined;
  }
}

/**
 * A consumer-group member that hands whole partition batches to a handler and commits their
 * offsets only after the handler returned (at-least-once; handlers must be idempotent).
 */
export class KafkaBatchConsumer implements BatchConsumer {
  private readonly consumer: Consumer;
  private readonly log = componentLogger('kafka-consumer');

  constructor(
    kafka: Kafka,
    private readonly opts: BatchConsumerOptions,
  ) {
    this.consumer = kafka.consumer({
      groupId: opts.groupId,
      allowAutoTopicCreation: false,
      sessionTimeout: 30000,
      heartbeatInterval: 3000,
      maxBytesPerPartition: 4 * 1024 * 1024,
      minBytes: opts.fetchMinBytes ?? 1,
      // An idle fetch returns after this long: it bounds how long a shutdown waits for the fetch in flight.
      maxWaitTimeInMs: opts.fetchMaxWaitMs ?? 1000,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 5000 },
    });
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      this.crashed = e.payload.error.message;
      this.log.error({ err: e.payload.error.message, groupId: opts.groupId, restart: e.payload.restart }, 'consumer crashed');
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
      this.crashed = null;
    });
  }

  /** The last crash that the consumer did not recover from yet (null while healthy). */
  crashed: string | null = null;

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [...this.opts.topics], fromBeginning: this.opts.fromBeginning });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.opts.partitionsConcurrently ?? 1,
      eachBatch: async ({ batch, isRunning, isStale, heartbeat, resolveOffset }) => {
        if (!isRunning() || isStale() || batch.messages.length === 0) return;
        const messages: IncomingMessage[] = batch.messages.map((m) => ({
          topic: batch.topic,
          partition: batch.partition,
          offset: m.offset,
          key: m.key ? m.key.toString() : null,
          value: m.value,
          headers: toHeaders(m.headers),
        }));
        await this.opts.handleBatch({
          topic: batch.topic,
          partition: batch.partition,
          messages,
          isRunning,
        });
        // Resolving moves the fetch position past the batch (committing alone does not, and the
        // same batch would come back forever); committing makes it durable for the group.
        resolveOffset(batch.lastOffset());
        const next = (BigInt(batch.lastOffset()) + 1n).toString();
        await this.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }]);
        await heartbeat();
      },
    });
    this.log.info({ groupId: this.opts.groupId, topics: this.opts.topics }, 'consumer started');
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}

/** Readiness probe: the cluster answers a metadata request. */
export async function probeKafka(admin: Admin): Promise<{ brokers: number }> {
  const cluster = await admin.describeCluster();
  return { brokers: cluster.brokers.length };
}

/** Creates topics that do not exist yet (topics are never auto-created). */
export async function ensureTopics(
  admin: Admin,
  topics: readonly { topic: string; numPartitions: number }[],
): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t.topic));
  if (missing.length === 0) return;
  await admin.createTopics({
    waitForLeaders: true,
    topics: missing.map((t) => ({ topic: t.topic, numPartitions: t.numPartitions, replicationFactor: 1 })),
  });
}

/** Total lag of a consumer group over a topic: end offsets minus committed offsets. */
export async function consumerLag(
  admin: Admin,
  groupId: string,
  topic: string,
  /** Also told each partition's lag (the apps' per-partition gauges). */
  onPartition?: (partition: number, lag: number) => void,
): Promise<number> {
  let lag = 0;
  for (const [partition, n] of await consumerLagByPartition(admin, groupId, topic)) {
    onPartition?.(partition, n);
    lag += n;
  }
  return lag;
}

/** The group's lag on each partition of the topic (messages after its committed offset). */
export async function consumerLagByPartition(admin: Admin, groupId: string, topic: string): Promise<Map<number, number>> {
  const [ends, committed] = await Promise.all([
    admin.fetchTopicOffsets(topic),
    admin.fetchOffsets({ groupId, topics: [topic] }),
  ]);
  const done = new Map<number, bigint>();
  for (const t of committed) for (const p of t.partitions) done.set(p.partition, BigInt(p.offset));
  const lag = new Map<number, number>();
  for (const p of ends) {
    const c = done.get(p.partition) ?? -1n;
    const end = BigInt(p.high);
    lag.set(p.partition, Number(c < 0n ? end - BigInt(p.low) : end - c));
  }
  return lag;
}
