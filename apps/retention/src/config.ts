import { DatabaseConfigSchema, KafkaConfigSchema, LogConfigSchema, env, loadConfig } from '@flowruns/platform';
import { RetentionPassConfigSchema } from '@flowruns/retention-runner';
import { z } from 'zod';

export const RetentionAppConfigSchema = z.object({
  ...DatabaseConfigSchema.shape,
  ...KafkaConfigSchema.shape,
  ...LogConfigSchema.shape,
  ...RetentionPassConfigSchema.shape,
  RETENTION_PORT: env.port(3003),
  /** Interface /health and /metrics listen on (0.0.0.0 in a container). */
  RETENTION_HOST: z.string().min(1).default('127.0.0.1'),
  /** A pass every this long (the first one right after start); 0: no schedule, on demand only (CLI). */
  RETENTION_INTERVAL_MS: z.coerce.number().int().min(0).max(7 * 86_400_000).default(3_600_000),
});
export type RetentionAppConfig = z.infer<typeof RetentionAppConfigSchema>;

export const RETENTION_CONFIG = Symbol('RETENTION_CONFIG');

export const loadRetentionConfig = (source: NodeJS.ProcessEnv = process.env): RetentionAppConfig => loadConfig(RetentionAppConfigSchema, source);
