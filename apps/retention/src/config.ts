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
  /**
   * The scheduled passes measure the windows from this far ahead of now (default 0). For drills:
   * a fault test purges under a live load runs that finished seconds ago without touching their
   * finish instant (which the events fix). Operators previewing a date use the CLI's `--now`.
   */
  RETENTION_CLOCK_AHEAD_MS: z.coerce.number().int().min(0).max(36500 * 86_400_000).default(0),
});
export type RetentionAppConfig = z.infer<typeof RetentionAppConfigSchema>;

export const RETENTION_CONFIG = Symbol('RETENTION_CONFIG');

export const loadRetentionConfig = (source: NodeJS.ProcessEnv = process.env): RetentionAppConfig => loadConfig(RetentionAppConfigSchema, source);
