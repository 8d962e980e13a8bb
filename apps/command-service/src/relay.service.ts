import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { EVENT_HEADERS } from '@flowruns/contracts';
import { ensureTopics, type Admin, type EventPublisher } from '@flowruns/messaging';
import { componentLogger, dlqTopicOf, traceIdOf } from '@flowruns/platform';
import { OutboxRelay } from '@flowruns/write-model';
import { Counter } from 'prom-client';
import { COMMAND_SERVICE_CONFIG, type CommandServiceConfig } from './config';

export const KAFKA_ADMIN = Symbol('KAFKA_ADMIN');
export const EVENT_PUBLISHER = Symbol('EVENT_PUBLISHER');

const published = new Counter({ name: 'flowruns_events_published_total', help: 'Run events published to Kafka' });

/** Owns the outbox relay's life: started once the app is up, drained on shutdown. */
@Injectable()
export class RelayService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly log = componentLogger('relay-service');
  readonly relay: OutboxRelay;

  constructor(
    @Inject(COMMAND_SERVICE_CONFIG) private readonly config: CommandServiceConfig,
    @Inject(KAFKA_ADMIN) private readonly admin: Admin,
    @Inject(EVENT_PUBLISHER) private readonly publisher: EventPublisher,
  ) {
    this.relay = new OutboxRelay({
      databaseUrl: config.DATABASE_URL,
      topic: config.KAFKA_TOPIC,
      publisher: this.logging(publisher),
      batchSize: config.RELAY_BATCH_SIZE,
      pollIntervalMs: config.RELAY_POLL_INTERVAL_MS,
      coalesceMs: config.RELAY_COALESCE_MS,
      onPublished: (n) => published.inc(n),
    });
  }

  /** Set once the topics exist; a failed attempt clears it, so the next publish tries again. */
  private topicsEnsured: Promise<void> | null = null;

  /**
   * Creates the topics if they are missing (idempotent), once per process. The producer never
   * auto-creates a topic, so a command service that started while Kafka was down or still starting
   * must create them before its first publish, or the relay would retry a topic that never comes.
   */
  private ensureTopics(): Promise<void> {
    // connect() is a no-op on a connected admin, and connects one whose first try failed.
    this.topicsEnsured ??= this.admin
      .connect()
      .then(() =>
        ensureTopics(this.admin, [
          { topic: this.config.KAFKA_TOPIC, numPartitions: this.config.KAFKA_TOPIC_PARTITIONS },
          { topic: dlqTopicOf(this.config), numPartitions: 1 },
        ]),
      )
      .catch((e: Error) => {
        this.topicsEnsured = null;
        throw e;
      });
    return this.topicsEnsured;
  }

  /**
   * The publisher, after the topics exist (a failure fails the relay's batch, which it retries with
   * backoff), plus one debug line per event once Kafka acknowledged it (the relay itself reports
   * only counts): its run, event and trace, as the projector and the worker log them.
   */
  private logging(publisher: EventPublisher): EventPublisher {
    return {
      publish: async (topic, messages) => {
        await this.ensureTopics();
        await publisher.publish(topic, messages);
        if (!this.log.isLevelEnabled('debug')) return;
        for (const msg of messages) {
          const h = msg.headers;
          this.log.debug(
            { runId: msg.key, eventId: h[EVENT_HEADERS.id], eventType: h[EVENT_HEADERS.type], traceId: traceIdOf(h[EVENT_HEADERS.traceparent]) },
            'event published',
          );
        }
      },
      close: () => publisher.close(),
    };
  }

  async onApplicationBootstrap(): Promise<void> {
    // Topics are created explicitly (never auto-created), here at start and, if that fails (a
    // broker down or still starting is not fatal; readiness reports it), before the relay's next
    // publish, which retries until they exist.
    try {
      await this.ensureTopics();
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'could not ensure topics at start; the relay creates them before it publishes');
    }
    this.relay.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.relay.stop();
    await this.publisher.close();
    await this.admin.disconnect();
  }
}
