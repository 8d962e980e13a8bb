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
  /** How often the consumer-lag gauge is refreshed between scrapes of /health/ready. */
  PROJECTOR_LAG_INTERVAL_MS: z.coerce.number().int().min(1000).max(600000).default(15000),
});
export type ProjectorConfig = z.infer<typeof ProjectorConfigSchema>;

export const PROJECTOR_CONFIG = Symbol('PROJECTOR_CONFIG');

/** Reads the projector's config once; a bad value fails the start with the variable's name. */
export const loadProjectorConfig = (source: NodeJS.ProcessEnv = process.env): ProjectorConfig =>
  loadConfig(ProjectorConfigSchema, source);
