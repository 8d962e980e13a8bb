import {
  DatabaseConfigSchema,
  KafkaConfigSchema,
  LogConfigSchema,
  env,
  loadConfig,
} from '@flowruns/platform';
import { z } from 'zod';

export const ProjectorConfigSchema = z.object({
  ...DatabaseConfigSchema.shape,
  ...KafkaConfigSchema.shape,
  ...LogConfigSchema.shape,
  PROJECTOR_PORT: env.port(3002),
  PROJECTOR_HOST: z.string().min(1).default('127.0.0.1'),
  /** All projector instances share it: Kafka splits the topic's partitions between them. */
  PROJECTOR_GROUP_ID: z.string().min(1).default('flow-runs-projector'),
  /**
   * Partition batches applied at once, each in its own transaction (a run's events all live on one
   * partition, so they never touch the same rows). Keep it at most DATABASE_POOL_MAX.
   */
  PROJECTOR_PARTITIONS_CONCURRENTLY: z.coerce.number().int().min(1).max(64).default(4),
  /**
   * A fetch from the broker answers once this many bytes of events are there, or after
   * PROJECTOR_FETCH_MAX_WAIT_MS: larger, fewer batches (fewer transactions and offset commits per
   * event) for up to that much added projection lag. 1: answer as soon as any event is there.
   * Under ingest load, 256 KiB / 100 ms made batches of ~30 events instead of ~13, and cut the
   * projector's CPU per event by a third and Postgres's by a quarter for ~100 ms more lag p99.
   */
  PROJECTOR_FETCH_MIN_BYTES: z.coerce.number().int().min(1).max(16 * 1024 * 1024).default(256 * 1024),
  PROJECTOR_FETCH_MAX_WAIT_MS: z.coerce.number().int().min(10).max(10000).default(100),
  /** How often the consumer-lag gauge is refreshed between scrapes of /health/ready. */
  PROJECTOR_LAG_INTERVAL_MS: z.coerce.number().int().min(1000).max(600000).default(15000),
});
export type ProjectorConfig = z.infer<typeof ProjectorConfigSchema>;

export const PROJECTOR_CONFIG = Symbol('PROJECTOR_CONFIG');

/** Reads the projector's config once; a bad value fails the start with the variable's name. */
export const loadProjectorConfig = (source: NodeJS.ProcessEnv = process.env): ProjectorConfig =>
  loadConfig(ProjectorConfigSchema, source);
