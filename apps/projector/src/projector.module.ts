import { Module, type DynamicModule } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { MikroORM } from '@mikro-orm/postgresql';
import { ormOptions, probePostgres } from '@flowruns/database';
import { createKafka, KafkaPublisher, probeKafka, type Admin, type Kafka } from '@flowruns/messaging';
import { HealthModule, MetricsModule, READINESS_PROBES, loggerModule, type ReadinessProbe } from '@flowruns/platform';
import { PROJECTOR_CONFIG, type ProjectorConfig } from './config';
import { DEAD_LETTER_PUBLISHER, KAFKA, KAFKA_ADMIN, ProjectorService } from './projector.service';

/**
 * The clients the projector holds. Global, because the readiness probes are built inside
 * HealthModule and resolve their dependencies from there.
 */
@Module({})
class ProjectorCoreModule {
  static forConfig(config: ProjectorConfig): DynamicModule {
    return {
      module: ProjectorCoreModule,
      global: true,
      providers: [
        { provide: PROJECTOR_CONFIG, useValue: config },
        {
          provide: KAFKA,
          useFactory: () => createKafka({ brokers: config.KAFKA_BROKERS, clientId: `${config.KAFKA_CLIENT_ID}-projector` }),
        },
        {
          provide: KAFKA_ADMIN,
          inject: [KAFKA],
          useFactory: (kafka: Kafka) => {
            const admin = kafka.admin();
            // In the background: the app starts, and reports not ready, while the broker is away.
            admin.connect().catch(() => undefined);
            return admin;
          },
        },
        { provide: DEAD_LETTER_PUBLISHER, inject: [KAFKA], useFactory: (kafka: Kafka) => new KafkaPublisher(kafka) },
        ProjectorService,
      ],
      exports: [PROJECTOR_CONFIG, KAFKA_ADMIN, ProjectorService],
    };
  }
}

/** The projector: a consumer group building the read model, with health and metrics over HTTP. */
@Module({})
export class ProjectorModule {
  static forConfig(config: ProjectorConfig): DynamicModule {
    return {
      module: ProjectorModule,
      imports: [
        loggerModule(),
        // No entities: the projection writes with set-based SQL. Never migrates (explicit step).
        MikroOrmModule.forRoot(ormOptions({ url: config.DATABASE_URL, entities: [], poolMax: config.DATABASE_POOL_MAX })),
        ProjectorCoreModule.forConfig(config),
        MetricsModule,
        HealthModule.forProbes({
          provide: READINESS_PROBES,
          inject: [MikroORM, KAFKA_ADMIN, ProjectorService],
          useFactory: (orm: MikroORM, admin: Admin, projector: ProjectorService): ReadinessProbe[] => [
            { name: 'postgres', check: () => probePostgres(orm.em.fork()) },
            { name: 'kafka', check: () => probeKafka(admin) },
            {
              // Lag is a detail, not a failure: a projector catching up is working as intended.
              name: 'consumer',
              check: async () => {
                const s = projector.status();
                if (!s.running) throw new Error(`consumer not running: ${s.lastError ?? 'starting'}`);
                try {
                  return { groupId: s.groupId, topic: s.topic, lag: await projector.lag() };
                } catch (e) {
                  return { groupId: s.groupId, topic: s.topic, lag: null, lagError: (e as Error).message };
                }
              },
            },
          ],
        }),
      ],
    };
  }
}
