import { InternalApiConfigSchema } from '@flowruns/platform';
import { z } from 'zod';

/** What a retention pass reads from the environment, the app's and the CLI's alike. */
export const RetentionPassConfigSchema = z.object({
  ...InternalApiConfigSchema.shape,
  /** Days a finished run keeps its execution data (a project's `retention_days` overrides it). */
  AP_EXECUTION_DATA_RETENTION_DAYS: z.coerce.number().int().min(1).max(36500).default(30),
  /** Runs purged per batch (one command-service transaction each, a handful of statements whatever its size). */
  RETENTION_BATCH_SIZE: z.coerce.number().int().min(1).max(10000).default(200),
  /** Pause between batches, leaving room for the live load (a batch holds one connection and about one core). */
  RETENTION_BATCH_PAUSE_MS: z.coerce.number().int().min(0).max(60000).default(10),
  /** Batches in flight at once (each takes different projects: a project's purge lock). */
  RETENTION_CONCURRENCY: z.coerce.number().int().min(1).max(8).default(1),
  /**
   * Most runs purged per second (0: no cap, batches as fast as they go). The cap makes a backlog's
   * purge an even trickle that leaves the machine to the live load: on the 2-core benchmark machine,
   * where everything shares two cores, 1 000 runs/s in batches of 200 kept the list's p99 within 2×
   * of its p99 without a purge; uncapped (about 7 000 runs/s there) it was 20× (BENCHMARKS.md,
   * purge). A system ingesting 5 000 events/s finishes about 600 runs/s, so the default keeps up
   * with expiry; raise it where the database has cores of its own.
   */
  RETENTION_MAX_RUNS_PER_S: z.coerce.number().int().min(0).max(1_000_000).default(1000),
  /**
   * Most of its time a lane spends in batches: after a batch that took d, it rests d × (1 − share) /
   * share (or RETENTION_BATCH_PAUSE_MS, if longer). At the default cap a batch takes a fraction of its
   * 200-ms slot (10–40 ms on the slowest machine measured), so this binds only when the batches slow down — a database short of time — and then
   * the purge backs off by itself instead of taking the same runs per second from it. 1: no limit.
   */
  RETENTION_MAX_BUSY_SHARE: z.coerce.number().gt(0).max(1).default(0.5),
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
