import { z } from 'zod';

/**
 * Reads a typed config from the environment once, at bootstrap. A bad value fails fast with a
 * message naming the variable, so a misconfigured process never half-starts.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);
const csv = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
    .pipe(z.array(z.string()).min(1));
const bool = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1');

export const env = { port, csv, bool };

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/flowruns';

export const DatabaseConfigSchema = z.object({
  DATABASE_URL: z.url().default(DEFAULT_DATABASE_URL),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
});

export const KafkaConfigSchema = z.object({
  KAFKA_BROKERS: csv('127.0.0.1:9092'),
  KAFKA_CLIENT_ID: z.string().default('flow-runs'),
  KAFKA_TOPIC: z.string().min(1).default('flow-run-events'),
  KAFKA_DLQ_TOPIC: z.string().min(1).optional(),
  KAFKA_TOPIC_PARTITIONS: z.coerce.number().int().min(1).max(1000).default(12),
});

export const LogConfigSchema = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export const InternalApiConfigSchema = z.object({
  COMMAND_SERVICE_URL: z.url().default('http://127.0.0.1:3001'),
  INTERNAL_API_TOKEN: z.string().min(16, 'must be at least 16 characters').default('dev-internal-token-change-me'),
});

/** The dead-letter topic: explicit, else `<topic>.dlq`. */
export const dlqTopicOf = (cfg: { KAFKA_TOPIC: string; KAFKA_DLQ_TOPIC?: string }): string =>
  cfg.KAFKA_DLQ_TOPIC ?? `${cfg.KAFKA_TOPIC}.dlq`;
