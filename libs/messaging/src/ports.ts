/** A message as the domain side sees it; the Kafka client stays behind these ports. */
export interface OutgoingMessage {
  readonly key: string;
  readonly value: string;
  readonly headers: Readonly<Record<string, string>>;
}

export interface IncomingMessage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
}

export interface EventPublisher {
  /** Resolves once every message is acknowledged by all in-sync replicas, in order. */
  publish(topic: string, messages: readonly OutgoingMessage[]): Promise<void>;
  close(): Promise<void>;
}

/** The messages of one partition fetched together. The handler returns once they are durable. */
export interface MessageBatch {
  readonly topic: string;
  readonly partition: number;
  readonly messages: readonly IncomingMessage[];
  /** True while the consumer is still running (false once a shutdown was requested). */
  isRunning(): boolean;
}

export interface BatchConsumerOptions {
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly fromBeginning: boolean;
  /**
   * Partition batches handled at once (default 1). Each is still handled and committed on its own;
   * only a handler whose batches of different partitions touch disjoint data may use more than one
   * (the projector: a run's events all live on its partition).
   */
  readonly partitionsConcurrently?: number;
  /**
   * A fetch answers once this many bytes are there or `fetchMaxWaitMs` passed (defaults 1 byte and
   * 1 000 ms: at once, as soon as anything is there). More bytes make fewer, larger batches — fewer
   * transactions and offset commits per event — for up to `fetchMaxWaitMs` of added latency.
   */
  readonly fetchMinBytes?: number;
  readonly fetchMaxWaitMs?: number;
  /**
   * Handles one batch. Returning commits the batch's offsets; throwing leaves them uncommitted so
   * the batch is fetched again (retriable errors). Poison messages are the handler's to dead-letter.
   */
  handleBatch(batch: MessageBatch): Promise<void>;
}

export interface BatchConsumer {
  start(): Promise<void>;
  /** The error of a crash the consumer has not recovered from (rejoined its group) yet; else null. */
  readonly crashed: string | null;
  /** Stops fetching, lets the batch in hand finish and commit, and leaves the group. */
  stop(): Promise<void>;
}
