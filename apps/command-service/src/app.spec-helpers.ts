import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { INTERNAL_TOKEN_HEADER } from '@flowruns/contracts';
import { createKafka, type Kafka } from '@flowruns/messaging';
import { observeHttp } from '@flowruns/platform';
import { createTestDatabase, testEnv, uniqueName } from '@flowruns/testing';
import { loadCommandServiceConfig } from './config';
import { configureCommandService } from './configure';

export const TEST_TOKEN = 'test-internal-token-0123456789';

export interface TestCommandService {
  readonly url: string;
  readonly topic: string;
  readonly databaseUrl: string;
  readonly kafka: Kafka;
  /** Calls the internal API with the token: `{ status, body }` (the body as JSON, checked by the spec). */
  call<T = Record<string, unknown>>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

/**
 * The command service in this process, as `main.ts` wires it (AppModule, body parser, error
 * envelopes), on its own database and topic. `env` overrides settings; the config is read when
 * the module is first imported, so a spec file boots one configuration.
 */
export async function startCommandService(env: Record<string, string> = {}): Promise<TestCommandService> {
  const db = await createTestDatabase('cmdsvc');
  const topic = uniqueName('it-cmdsvc');
  Object.assign(process.env, {
    DATABASE_URL: db.url,
    DATABASE_POOL_MAX: '8',
    KAFKA_BROKERS: testEnv().kafkaBrokers.join(','),
    KAFKA_TOPIC: topic,
    KAFKA_TOPIC_PARTITIONS: '2',
    INTERNAL_API_TOKEN: TEST_TOKEN,
    LOG_LEVEL: 'silent',
    RELAY_POLL_INTERVAL_MS: '100',
    ...env,
  });
  const { AppModule } = await import('./app.module');
  const app: INestApplication = await NestFactory.create(AppModule, { bodyParser: false, logger: false });
  // As bootstrapHttpApp does for the real process.
  observeHttp(app, 'command-service');
  configureCommandService(app, loadCommandServiceConfig());
  app.enableShutdownHooks();
  await app.listen(0, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  return {
    url,
    topic,
    databaseUrl: db.url,
    kafka: createKafka({ brokers: testEnv().kafkaBrokers, clientId: 'it-cmdsvc-reader' }),
    async call<T>(method: 'GET' | 'POST', path: string, body?: unknown) {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { [INTERNAL_TOKEN_HEADER]: TEST_TOKEN, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
    },
    async close() {
      await app.close();
      await db.drop();
    },
  };
}
