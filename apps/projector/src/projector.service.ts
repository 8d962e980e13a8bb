import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { MikroORM } from '@mikro-orm/postgresql';
import { pendingMigrations, PgTransactions } from '@flowruns/database';
import {
  consumerLag,
  ResilientConsumer,
  type Admin,
  type EventPublisher,
  type Kafka,
  type MessageBatch,
} from '@flowruns/messaging';
import { componentLogger, dlqTopicOf } from '@flowruns/platform';
import { ProjectionBatchHandler, type BatchOutcome } from '@flowruns/projection';
import { PROJECTOR_CONFIG, type ProjectorConfig } from './config';
import { projectorMetrics as m } from './metrics';

export const KAFKA = Symbol('KAFKA');
export const KAFKA_ADMIN = Symbol('KAFKA_ADMIN');
export const DEAD_LETTER_PUBLISHER = Symbol('DEAD_LETTER_PUBLISHER');


/** What readiness reports about the consumer. */
export interface ConsumerStatus {
  readonly running: boolean;
  readonly groupId: string;
  readonly topic: string;
  readonly lastError: string | null;
}

/**
 * Owns the consumer's life: joins the group once the app is up (retrying while Kafka or the schema
 * is not there yet), and on shutdown finishes the batch in hand, commits it and leaves the group
 * before the ORM closes.
 */
@Injectable()
export class ProjectorService implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly log = componentLogger('projector');
  private readonly handler: ProjectionBatchHandler;
  private readonly consumer: ResilientConsumer;
  private readonly transactions: PgTransactions;
  private lagTimer?: NodeJS.Timeout;

  constructor(
    @Inject(PROJECTOR_CONFIG) private readonly config: ProjectorConfig,
    @Inject(KAFKA) kafka: Kafka,
    @Inject(KAFKA_ADMIN) private readonly admin: Admin,
    @Inject(DEAD_LETTER_PUBLISHER) private readonly deadLetters: EventPublisher,
    private readonly orm: MikroORM,
  ) {
    // Batches are applied on a plain pg pool with MikroORM's own SQL formatting (as the command
    // service's write path): no entity-manager fork, knex transaction or runner per statement.
    this.transactions = new PgTransactions(
      { url: config.DATABASE_URL, max: config.DATABASE_POOL_MAX, applicationName: 'projector' },
      orm.em.getPlatform(),
      (e) => this.log.warn({ err: e.message }, 'idle database connection failed'),
    );
    this.handler = new ProjectionBatchHandler({
      entityManager: () => this.transactions,
      deadLetters,
      deadLetterTopic: dlqTopicOf(config),
      consumerGroup: config.PROJECTOR_GROUP_ID,
    });
    this.consumer = new ResilientConsumer(kafka, {
      name: 'projector',
      admin,
      groupId: config.PROJECTOR_GROUP_ID,
      topics: [config.KAFKA_TOPIC],
      ensureTopics: [
        { topic: config.KAFKA_TOPIC, numPartitions: config.KAFKA_TOPIC_PARTITIONS },
        { topic: dlqTopicOf(config), numPartitions: 1 },
      ],
      // A new group (or a rebuild into a fresh schema) starts from the first event ever published.
      fromBeginning: true,
      partitionsConcurrently: config.PROJECTOR_PARTITIONS_CONCURRENTLY,
      fetchMinBytes: config.PROJECTOR_FETCH_MIN_BYTES,
      fetchMaxWaitMs: config.PROJECTOR_FETCH_MAX_WAIT_MS,
      // The projector never migrates; it waits for the explicit migrate step instead of failing later.
      prepare: () => this.assertSchema(),
      handleBatch: (batch) => this.handleBatch(batch),
    });
  }

  status(): ConsumerStatus {
    return { ...this.consumer.status(), groupId: this.config.PROJECTOR_GROUP_ID, topic: this.config.KAFKA_TOPIC };
  }

  /** The group's lag over the topic; also feeds the gauge. */
  async lag(): Promise<number> {
    const total = await consumerLag(this.admin, this.config.PROJECTOR_GROUP_ID, this.config.KAFKA_TOPIC, (partition, n) =>
      m.partitionLag.set({ partition: String(partition) }, n),
    );
    m.lag.set(total);
    return total;
  }

  onApplicationBootstrap(): void {
    // In the background: the HTTP side (health, metrics) is up while Kafka or the schema is not.
    this.consumer.start();
    this.lagTimer = setInterval(() => {
      this.lag().catch((e: Error) => this.log.debug({ err: e.message }, 'lag refresh failed'));
    }, this.config.PROJECTOR_LAG_INTERVAL_MS);
    this.lagTimer.unref();
  }

  /** Before the ORM closes (it closes in `onApplicationShutdown`): the batch in hand still needs it. */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.lagTimer);
    await this.consumer.stop();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.transactions.close();
    await this.deadLetters.close();
    await this.admin.disconnect();
  }

  /**
   * The projector never migrates; it waits for the explicit migrate step instead of failing later.
   * Every migration of this build applied (not only its tables present: a column it writes may come
   * from a later migration).
   */
  private async assertSchema(): Promise<void> {
    const pending = await pendingMigrations(this.orm.em.fork());
    if (pending.length) throw new Error(`migrations not applied (${pending.join(', ')}): run the migrate step first`);
  }

  private async handleBatch(batch: MessageBatch): Promise<void> {
    const end = m.batchSeconds.startTimer();
    let out: BatchOutcome;
    try {
      out = await this.handler.handle(batch);
    } catch (e) {
      end({ result: 'retried' });
      this.log.warn(
        { err: (e as Error).message, topic: batch.topic, partition: batch.partition, firstOffset: batch.messages[0]?.offset },
        'batch failed; it is not committed and will be delivered again',
      );
      throw e;
    }
    end({ result: 'committed' });
    m.events.inc({ outcome: 'applied' }, out.applied);
    m.events.inc({ outcome: 'duplicate' }, out.duplicates);
    m.events.inc({ outcome: 'gap' }, out.gaps);
    m.events.inc({ outcome: 'unknown' }, out.unknown);
    m.events.inc({ outcome: 'dead_lettered' }, out.deadLettered);
    for (const s of out.stalls) m.stalledRuns.inc({ reason: s.reason });
  }
}
