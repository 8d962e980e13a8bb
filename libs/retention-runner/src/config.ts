import { InternalApiConfigSchema } from '@flowruns/platform';
import { z } from 'zod';

/** What a retention pass reads from the environment, the app's and the CLI's alike. */
export const RetentionPassConfigSchema = z.object({
  ...InternalApiConfigSchema.shape,
  /** Days a finished run keeps its execution data (a project's `retention_days` overrides it). */
  AP_EXECUTION_DATA_RETENTION_DAYS: z.coerce.number().int().min(1).max(36500).default(30),
  /** Runs purged per batch (one command-service transaction each, a handful of statements whatever its size). */
  RETENTION_BATCH_SIZE: z.coerce.number().int().min(1).max(10000).default(2000),
  /** Pause between batches, leaving room for the live load (a batch holds one connection and about one core). */
  RETENTION_BATCH_PAUSE_MS: z.coerce.number().int().min(0).max(60000).default(10),
  /** Batches in flight at once (each takes different runs: `skip locked`). */
  RETENTION_CONCURRENCY: z.coerce.number().int().min(1).max(8).default(1),
  /** Deadline of one call to the command service (one batch). */
  RETENTION_CALL_TIMEOUT_MS: z.coerce.number().int().min(100).max(600000).default(60000),
});
export type RetentionPassConfig = z.infer<typeof RetentionPassConfigSchema>;

/** The client options a config gives. */
export const retentionClientOptions = (c: RetentionPassConfig) => ({
  baseUrl: c.COMMAND_SERVICE_URL,
  token: c.INTERNAL_API_TOKEN,
  timeoutMs: c.RETENTION_CALL_TIMEOUT_MS,
});
