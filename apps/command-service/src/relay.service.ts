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

  /**
   * The publisher, plus one debug line per event once Kafka acknowledged it (the relay itself
   * reports only counts): its run, event and trace, as the projector and the worker log them.
   */
  private logging(publisher: EventPublisher): EventPublisher {
    return {
      publish: async (topic, messages) => {
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
    // Topics are created explicitly (never auto-created); this is idempotent. A broker that is
    // down now is not fatal: the relay keeps retrying and readiness reports it.
    try {
      await ensureTopics(this.admin, [
        { topic: this.config.KAFKA_TOPIC, numPartitions: this.config.KAFKA_TOPIC_PARTITIONS },
        { topic: dlqTopicOf(this.config), numPartitions: 1 },
      ]);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'could not ensure topics at start; relay will retry');
    }
    this.relay.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.relay.stop();
    await this.publisher.close();
    await this.admin.disconnect();
  }
}
