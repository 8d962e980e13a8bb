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

export const CommandServiceConfigSchema = z.object({
  ...DatabaseConfigSchema.shape,
  ...KafkaConfigSchema.shape,
  ...LogConfigSchema.shape,
  INTERNAL_API_TOKEN: InternalApiConfigSchema.shape.INTERNAL_API_TOKEN,
  COMMAND_SERVICE_PORT: env.port(3001),
  COMMAND_SERVICE_HOST: z.string().default('127.0.0.1'),
  COMMAND_SERVICE_BODY_LIMIT: z.string().default('5mb'),
  /**
   * Deepest nesting of arrays and objects a request body may have; deeper ones answer 400. Twice the
   * gateway's default: a payload the gateway accepted arrives wrapped in a request (`{ payload }`),
   * and a worker's step results may embed it a few levels down.
   */
  COMMAND_SERVICE_JSON_MAX_DEPTH: z.coerce.number().int().min(1).max(1000).default(2 * DEFAULT_JSON_MAX_DEPTH),
  RELAY_BATCH_SIZE: z.coerce.number().int().min(1).max(10000).default(500),
  RELAY_POLL_INTERVAL_MS: z.coerce.number().int().min(10).max(60000).default(1000),
  /** Wake-ups of the relay are coalesced to one batch (and one cross-process NOTIFY) per this many ms. */
  RELAY_COALESCE_MS: z.coerce.number().int().min(0).max(1000).default(10),
  AP_MAX_RETRY_ATTEMPTS: z.coerce.number().int().min(1).max(1000).default(5),
  AP_PAUSE_TIMEOUT_SECONDS: z.coerce.number().positive().default(86400),
  AP_FLOW_TIMEOUT_SECONDS: z.coerce.number().positive().default(600),
  AP_ORPHAN_RUN_SECONDS: z.coerce.number().positive().default(120),
  SUPERVISOR_INTERVAL_MS: z.coerce.number().int().min(10).max(3600000).default(1000),
  SUPERVISOR_BATCH_SIZE: z.coerce.number().int().min(1).max(10000).default(100),
  /** Runs a bulk cancel/retry/archive changes per transaction (and reads per page). */
  COMMAND_BULK_BATCH_SIZE: z.coerce.number().int().min(1).max(5000).default(2000),
  /** Pages of a bulk operation worked on at once (1: one after the other). */
  COMMAND_BULK_PAGES_IN_FLIGHT: z.coerce.number().int().min(1).max(8).default(2),
  /**
   * Single triggers (`POST /internal/flows/:flowId/runs`) in group commit: those that arrive while
   * others are being written share the next transaction, at most this many (0: a transaction each).
   */
  COMMAND_TRIGGER_GROUP: z.coerce.number().int().min(0).max(500).default(100),
  /** Transactions of grouped single triggers at once. */
  COMMAND_TRIGGER_GROUPS_IN_FLIGHT: z.coerce.number().int().min(1).max(16).default(2),
});
export type CommandServiceConfig = z.infer<typeof CommandServiceConfigSchema>;

export const COMMAND_SERVICE_CONFIG = Symbol('COMMAND_SERVICE_CONFIG');
export const loadCommandServiceConfig = (): CommandServiceConfig => loadConfig(CommandServiceConfigSchema);
