import { parseAllowList } from '@flowruns/engine';
import { InternalApiConfigSchema, KafkaConfigSchema, LogConfigSchema, env, loadConfig } from '@flowruns/platform';
import { z } from 'zod';

const int = (min: number, max: number, fallback: number) => z.coerce.number().int().min(min).max(max).default(fallback);

/** An allow-list of the http step's SSRF guard (`parseAllowList`); a bad entry fails the start, naming it. */
const allowList = () =>
  z
    .string()
    .default('')
    .transform((text, ctx) => {
      try {
        return parseAllowList(text);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    });

export const FlowWorkerConfigSchema = z.object({
  ...KafkaConfigSchema.shape,
  ...LogConfigSchema.shape,
  ...InternalApiConfigSchema.shape,
  COMMAND_SERVICE_TIMEOUT_MS: int(100, 120000, 10000),
  FLOW_WORKER_PORT: env.port(3004),
  FLOW_WORKER_HOST: z.string().min(1).default('127.0.0.1'),
  /** All workers share it (their own group, not the projector's): Kafka splits the partitions between them. */
  FLOW_WORKER_GROUP_ID: z.string().min(1).default('flow-runs-worker'),
  /** Runs driven at once by one worker. */
  FLOW_WORKER_CONCURRENCY: int(1, 1000, 8),
  /**
   * Reports (step starts and finishes, pauses, endings) of the runs this worker drives go to the
   * command service in batches of at most this many, one call and one transaction per batch; 0 sends
   * each report on its own call.
   */
  FLOW_WORKER_REPORT_BATCH: int(0, 500, 200),
  /** Report batches in flight at once; reports made meanwhile wait for the next batch. */
  FLOW_WORKER_REPORT_CALLS_IN_FLIGHT: int(1, 64, 2),
  /** A run's lease lasts this long unless renewed (renewed every third of it while driving). */
  FLOW_WORKER_LEASE_TTL_MS: int(1000, 600000, 10000),
  /** How often expired leases (runs of dead workers) are claimed; default half the lease TTL. */
  FLOW_WORKER_CLAIM_INTERVAL_MS: z.coerce.number().int().min(100).max(600000).optional(),
  /** How often the group's consumer lag is measured for /metrics. */
  FLOW_WORKER_LAG_INTERVAL_MS: int(1000, 600000, 15000),
  /** On SIGTERM, how long running steps may take to finish before they are abandoned (and run again elsewhere). */
  FLOW_WORKER_SHUTDOWN_TIMEOUT_MS: int(0, 600000, 20000),
  /** Deadline of one request of an `http` step. */
  ENGINE_HTTP_TIMEOUT_MS: int(1, 3600000, 30000),
  /**
   * The `http` step refuses loopback, private, link-local (cloud metadata), CGNAT, multicast and
   * reserved addresses; these (addresses, CIDR ranges, host names, comma-separated) are let through
   * all the same. `*` turns the guard off. Default: nothing.
   */
  FLOW_WORKER_HTTP_ALLOW_PRIVATE: allowList(),
  /** The maximum execution time of a run, checked before each step (the command service's supervisor enforces it too). */
  AP_FLOW_TIMEOUT_SECONDS: z.coerce.number().positive().default(600),
});
export type FlowWorkerConfig = z.infer<typeof FlowWorkerConfigSchema>;

export const FLOW_WORKER_CONFIG = Symbol('FLOW_WORKER_CONFIG');

/** Reads the worker's config once; a bad value fails the start with the variable's name. */
export const loadFlowWorkerConfig = (source: NodeJS.ProcessEnv = process.env): FlowWorkerConfig =>
  loadConfig(FlowWorkerConfigSchema, source);

export const claimIntervalOf = (c: FlowWorkerConfig): number => c.FLOW_WORKER_CLAIM_INTERVAL_MS ?? Math.max(100, Math.floor(c.FLOW_WORKER_LEASE_TTL_MS / 2));
