import { Module } from '@nestjs/common';
import { DatabaseConfigSchema, KafkaConfigSchema, LogConfigSchema, env, loadConfig } from '@flowruns/platform';
import { ServiceKitModule } from '@flowruns/service-kit';
import { z } from 'zod';

export const config = loadConfig(
  z.object({ ...DatabaseConfigSchema.shape, ...KafkaConfigSchema.shape, ...LogConfigSchema.shape, RETENTION_PORT: env.port(3003) }),
);

/** Boots with health and metrics only; the retention's work arrives with its own issue. */
@Module({
  imports: [
    ServiceKitModule.forApp({
      name: 'retention',
      databaseUrl: config.DATABASE_URL,
      kafkaBrokers: config.KAFKA_BROKERS,
      kafkaClientId: config.KAFKA_CLIENT_ID,
    }),
  ],
})
export class AppModule {}
