import { Module, type DynamicModule } from '@nestjs/common';
import { ServiceKitModule } from '@flowruns/service-kit';
import { RETENTION_CONFIG, type RetentionAppConfig } from './config';
import { RetentionScheduler } from './retention.scheduler';

/** The retention app: health, metrics, and the scheduled purge (which the command service carries out). */
@Module({})
export class RetentionModule {
  static forRoot(config: RetentionAppConfig): DynamicModule {
    return {
      module: RetentionModule,
      imports: [
        ServiceKitModule.forApp({
          name: 'retention',
          databaseUrl: config.DATABASE_URL,
          kafkaBrokers: config.KAFKA_BROKERS,
          kafkaClientId: config.KAFKA_CLIENT_ID,
          poolMax: 2,
        }),
      ],
      providers: [{ provide: RETENTION_CONFIG, useValue: config }, RetentionScheduler],
    };
  }
}
