import { DEFAULT_JSON_MAX_DEPTH } from '@flowruns/contracts';
import {
  DatabaseConfigSchema,
  InternalApiConfigSchema,
  KafkaConfigSchema,
  LogConfigSchema,
  env,
  loadConfig,
} from '@flowruns/platform';
import { z } from 'zod';

const millis = (fallback: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(fallback);

/** Everything the gateway reads from the environment, validated once at bootstrap. */
export const GatewayConfigSchema = z.object({
  ...DatabaseConfigSchema.shape,
  ...KafkaConfigSchema.shape,
  ...LogConfigSchema.shape,
  ...InternalApiConfigSchema.shape,
  GATEWAY_PORT: env.port(3000),
  GATEWAY_HOST: z.string().min(1).default('127.0.0.1'),
  /** Largest accepted JSON body (bytes library syntax: `512kb`, `1mb`); larger ones answer 413. */
  GATEWAY_BODY_LIMIT: z
    .string()
    .regex(/^\d+(\.\d+)?\s*(b|kb|mb|gb)?$/i, 'a size such as 512kb or 1mb')
    .default('1mb'),
  /**
   * Deepest nesting of arrays and objects a JSON body may have (trigger payloads, resume bodies,
   * flow definitions); deeper ones answer 400 naming the body. Keep it below the command service's
   * `COMMAND_SERVICE_JSON_MAX_DEPTH`, which sees the payload wrapped in its request.
   */
  GATEWAY_JSON_MAX_DEPTH: z.coerce.number().int().min(1).max(1000).default(DEFAULT_JSON_MAX_DEPTH),
  /** Deadline for one call to the command service; past it the client gets 503. */
  COMMAND_SERVICE_TIMEOUT_MS: millis(10_000, 100, 300_000),
  /**
   * Triggers (`POST /api/v1/flows/:flowId/run`) go to the command service in batches of at most
   * this many, one call and one transaction per batch (`CallBatcher`: no timer, batches grow with
   * load); 0 sends each trigger on its own call.
   */
  GATEWAY_TRIGGER_BATCH: z.coerce.number().int().min(0).max(500).default(100),
  /** Trigger batches in flight at once; triggers that arrive meanwhile wait for the next batch. */
  GATEWAY_TRIGGER_CALLS_IN_FLIGHT: z.coerce.number().int().min(1).max(64).default(2),
  /** How long a verified API key is trusted without asking Postgres (so a revocation takes up to this long). */
  AUTH_CACHE_TTL_MS: millis(30_000, 0, 3_600_000),
  /** How long an unknown or revoked key is remembered as such. */
  AUTH_NEGATIVE_CACHE_TTL_MS: millis(5_000, 0, 600_000),
  AUTH_CACHE_MAX_ENTRIES: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  /**
   * Deadline for one bulk cancel/retry/archive (the command service answers when every batch is
   * done). At most 290 s: undici (the command client) gives up waiting for response headers after 300 s (its headersTimeout).
   */
  GATEWAY_BULK_TIMEOUT_MS: millis(240_000, 1000, 290_000),
  /**
   * Read-your-writes: how long `GET /api/v1/flow-runs/:id` waits for a run that exists in the write
   * model but is not in the views yet (just triggered); past it, 503 with Retry-After. 0: answer 404 at once.
   */
  GATEWAY_READ_WAIT_MS: millis(2_000, 0, 30_000),
  /** Runs read per page by an export (memory stays at one page of runs with their steps). */
  GATEWAY_EXPORT_PAGE_SIZE: z.coerce.number().int().min(1).max(5_000).default(200),
  /**
   * How long an `Idempotency-Key`'s first answer is kept and replayed (from when it was answered).
   * Keys live in Postgres (`idempotency_keys`), so every gateway instance sees them.
   */
  GATEWAY_IDEMPOTENCY_TTL_SECONDS: z.coerce.number().int().min(1).max(30 * 86_400).default(86_400),
  /**
   * How long a key stays claimed by a request that has not been answered yet. Only matters when a
   * gateway dies mid-request: the key is free again after this. Longer than any request may last
   * (Node ends a request after 300 s), so a slow bulk operation is never run twice.
   */
  GATEWAY_IDEMPOTENCY_LOCK_SECONDS: z.coerce.number().int().min(1).max(3_600).default(330),
  /** How often a gateway deletes expired keys (in bounded batches, skipping rows another gateway holds). 0: never. */
  GATEWAY_IDEMPOTENCY_SWEEP_INTERVAL_MS: millis(60_000, 0, 86_400_000),
  /**
   * Sustained requests per second allowed per API key (per client address on the resume routes,
   * which take no key), counted in each gateway instance's memory: with N instances behind a
   * balancer a key gets up to N times this. 0 turns rate limiting off.
   */
  GATEWAY_RATE_LIMIT_PER_SECOND: z.coerce.number().int().min(0).max(1_000_000).default(1000),
  /** Most requests a key may send at once: the limit is this many per window of BURST / PER_SECOND seconds. */
  GATEWAY_RATE_LIMIT_BURST: z.coerce.number().int().min(1).max(10_000_000).default(2000),
});
export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;

export const GATEWAY_CONFIG = Symbol('GATEWAY_CONFIG');

export const loadGatewayConfig = (source: NodeJS.ProcessEnv = process.env): GatewayConfig =>
  loadConfig(GatewayConfigSchema, source);
