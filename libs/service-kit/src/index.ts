import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { MikroORM } from '@mikro-orm/postgresql';
import { ormOptions, probePostgres } from '@flowruns/database';
import { createKafka, probeKafka, type Admin } from '@flowruns/messaging';
import {
  ErrorEnvelopeFilter,
  HealthModule,
  MetricsModule,
  READINESS_PROBES,
  loggerModule,
  type ReadinessProbe,
} from '@flowruns/platform';

export const KAFKA_ADMIN = Symbol('KAFKA_ADMIN');

export interface ServiceKitOptions {
  readonly name: string;
  readonly databaseUrl: string;
  readonly poolMax?: number;
  readonly kafkaBrokers: readonly string[];
  readonly kafkaClientId: string;
}

/**
 * What every app holds the same way: JSON logs, MikroORM on Postgres, a Kafka admin client, the
 * error envelope, `/metrics`, and `/health/live` + `/health/ready` probing Postgres and Kafka.
 */
@Module({})
export class ServiceKitModule {
  static forApp(opts: ServiceKitOptions): DynamicModule {
    const admin: Provider = {
      provide: KAFKA_ADMIN,
      useFactory: () => {
        const a = createKafka({ brokers: opts.kafkaBrokers, clientId: `${opts.kafkaClientId}-${opts.name}` }).admin();
        // Connect in the background: the app starts (not ready) while the broker is away.
        a.connect().catch(() => undefined);
        return a;
      },
    };
    return {
      module: ServiceKitModule,
      global: true,
      imports: [
        loggerModule(),
        MikroOrmModule.forRoot(ormOptions({ url: opts.databaseUrl, entities: [], poolMax: opts.poolMax ?? 4 })),
        MetricsModule,
        HealthModule.forProbes({
          provide: READINESS_PROBES,
          inject: [MikroORM, KAFKA_ADMIN],
          useFactory: (orm: MikroORM, a: Admin): ReadinessProbe[] => [
            { name: 'postgres', check: () => probePostgres(orm.em.fork()) },
            { name: 'kafka', check: () => probeKafka(a) },
          ],
        }),
      ],
      providers: [admin, { provide: APP_FILTER, useClass: ErrorEnvelopeFilter }],
      exports: [admin],
    };
  }
}
