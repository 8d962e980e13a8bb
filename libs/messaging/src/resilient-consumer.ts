import type { Admin, Kafka } from 'kafkajs';
import { componentLogger } from '@flowruns/platform';
import { KafkaBatchConsumer, ensureTopics } from './kafka';
import type { BatchConsumerOptions } from './ports';

export interface ResilientConsumerOptions extends BatchConsumerOptions {
  /** Who consumes (logs). */
  readonly name: string;
  readonly admin: Admin;
  /** Topics created if missing before subscribing (never auto-created), so the consumer may start first. */
  readonly ensureTopics: readonly { topic: string; numPartitions: number }[];
  /** Checked before each attempt (e.g. the schema it writes to exists); a throw is retried like a broker error. */
  readonly prepare?: () => Promise<void>;
}

/** What readiness reports of a consumer. */
export interface ResilientConsumerStatus {
  readonly running: boolean;
  readonly lastError: string | null;
}

/**
 * A batch consumer that starts in the background and keeps trying (backoff 0.5 s doubling to 10 s)
 * until the broker, the topics and whatever `prepare` checks are there, so an app is up (health,
 * metrics) while its dependencies are not. `stop` ends the attempts, lets the batch in hand finish
 * and commit, and leaves the group. The flow worker and the projector both consume through it.
 */
export class ResilientConsumer {
  private readonly log = componentLogger('kafka-consumer');
  private consumer?: KafkaBatchConsumer;
  private starting?: Promise<void>;
  private running = false;
  private stopping = false;
  private lastError: string | null = null;
  private wake?: () => void;

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: ResilientConsumerOptions,
  ) {}

  start(): void {
    this.starting ??= this.startWithRetry();
  }

  status(): ResilientConsumerStatus {
    // A consumer that crashed is not consuming, whatever it was before.
    return { running: this.running && !this.consumer?.crashed, lastError: this.consumer?.crashed ?? this.lastError };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.starting;
    if (this.consumer) {
      this.log.info({ consumer: this.opts.name, groupId: this.opts.groupId }, 'stopping: finishing the batch in hand, then leaving the group');
      await this.consumer.stop().catch((e: Error) => this.log.warn({ consumer: this.opts.name, err: e.message }, 'consumer stop failed'));
      this.consumer = undefined;
    }
    this.running = false;
  }

  private async startWithRetry(): Promise<void> {
    let backoff = 500;
    while (!this.stopping) {
      try {
        await this.opts.prepare?.();
        await this.opts.admin.connect();
        await ensureTopics(this.opts.admin, this.opts.ensureTopics);
        const consumer = new KafkaBatchConsumer(this.kafka, this.opts);
        this.consumer = consumer;
        await consumer.start();
        this.running = true;
        this.lastError = null;
        return;
      } catch (e) {
        this.lastError = (e as Error).message;
        this.log.warn({ consumer: this.opts.name, err: this.lastError, retryInMs: backoff }, 'could not start consuming; retrying');
        await this.consumer?.stop().catch(() => undefined);
        this.consumer = undefined;
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, 10000);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}
