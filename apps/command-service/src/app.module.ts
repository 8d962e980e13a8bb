import { Global, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { MikroORM } from '@mikro-orm/postgresql';
import { ormOptions, PgTransactions, probePostgres } from '@flowruns/database';
import { createKafka, KafkaPublisher, probeKafka, type Admin } from '@flowruns/messaging';
import {
  componentLogger,
  ErrorEnvelopeFilter,
  HealthModule,
  MetricsModule,
  READINESS_PROBES,
  loggerModule,
  type ReadinessProbe,
} from '@flowruns/platform';
import { RunCommands, RunSupervisor, type Transactor } from '@flowruns/write-model';
import { COMMAND_SERVICE_CONFIG, loadCommandServiceConfig, type CommandServiceConfig } from './config';
import { InternalTokenGuard } from './internal-token.guard';
import { EVENT_PUBLISHER, KAFKA_ADMIN, RelayService } from './relay.service';
import { RunsController } from './runs.controller';
import { RUN_SUPERVISOR, SupervisorService } from './supervisor.service';

const config = loadCommandServiceConfig();
const TRANSACTOR = Symbol('TRANSACTOR');

/**
 * Config, Kafka clients and the relay, global so that the health module (a module of its own) can
 * inject them into its probes.
 */
@Global()
@Module({
  providers: [
    { provide: COMMAND_SERVICE_CONFIG, useValue: config },
    {
      provide: 'KAFKA',
      useFactory: (c: CommandServiceConfig) => createKafka({ brokers: c.KAFKA_BROKERS, clientId: `${c.KAFKA_CLIENT_ID}-command` }),
      inject: [COMMAND_SERVICE_CONFIG],
    },
    {
      provide: KAFKA_ADMIN,
      useFactory: (kafka: ReturnType<typeof createKafka>) => {
        const admin = kafka.admin();
        // Connect in the background: the service starts (and reports not ready) while the broker is away.
        admin.connect().catch(() => undefined);
        return admin;
      },
      inject: ['KAFKA'],
    },
    { provide: EVENT_PUBLISHER, useFactory: (kafka: ReturnType<typeof createKafka>) => new KafkaPublisher(kafka), inject: ['KAFKA'] },
    RelayService,
  ],
  exports: [COMMAND_SERVICE_CONFIG, KAFKA_ADMIN, RelayService],
})
class CommandInfraModule {}

@Module({
  imports: [
    loggerModule(),
    // No request context per request: nothing here uses the ORM's identity map (transactions go
    // through PgTransactions, the probe forks), and the middleware forked an EntityManager per call.
    MikroOrmModule.forRoot({
      ...ormOptions({ url: config.DATABASE_URL, entities: [], poolMax: 2 }),
      registerRequestContext: false,
    }),
    CommandInfraModule,
    MetricsModule,
    HealthModule.forProbes({
      provide: READINESS_PROBES,
      inject: [MikroORM, KAFKA_ADMIN, RelayService],
      useFactory: (orm: MikroORM, admin: Admin, relay: RelayService): ReadinessProbe[] => [
        { name: 'postgres', check: () => probePostgres(orm.em.fork()) },
        { name: 'kafka', check: () => probeKafka(admin) },
        {
          name: 'relay',
          check: async () => {
            const s = relay.relay.status();
            if (s.lastError) throw new Error(`relay: ${s.lastError}`);
            return s;
          },
        },
      ],
    }),
  ],
  controllers: [RunsController],
  providers: [
    { provide: APP_FILTER, useClass: ErrorEnvelopeFilter },
    {
      provide: TRANSACTOR,
      inject: [MikroORM, RelayService],
      useFactory: (orm: MikroORM, relay: RelayService): Transactor & { onApplicationShutdown(): Promise<void> } => {
        // The write path's transactions skip MikroORM's per-call machinery but send its exact SQL
        // (PgTransactions); the ORM keeps the migrations and the readiness probe.
        const log = componentLogger('transactions');
        const pg = new PgTransactions(
          { url: config.DATABASE_URL, max: config.DATABASE_POOL_MAX, applicationName: 'command-service' },
          orm.em.getPlatform(),
          (e) => log.warn({ err: e.message }, 'idle database connection failed'),
        );
        return {
          // A unit of work that appended events wakes the relay after its commit (no NOTIFY inside
          // the transaction: see OutboxRelay.appendCommitted).
          transactional: async (work) => {
            let appended = false;
            const outboxAppended = () => {
              appended = true;
            };
            const result = await pg.transactional((sql) => work({ execute: sql.execute, outboxAppended }));
            if (appended) relay.relay.appendCommitted();
            return result;
          },
          onApplicationShutdown: () => pg.close(),
        };
      },
    },
    {
      provide: RunCommands,
      inject: [TRANSACTOR],
      useFactory: (tx: Transactor) =>
        new RunCommands(tx, () => new Date(), {
          maxRetryAttempts: config.AP_MAX_RETRY_ATTEMPTS,
          pauseTimeoutSeconds: config.AP_PAUSE_TIMEOUT_SECONDS,
          bulkBatchSize: config.COMMAND_BULK_BATCH_SIZE,
          bulkPagesInFlight: config.COMMAND_BULK_PAGES_IN_FLIGHT,
        }),
    },
    {
      provide: RUN_SUPERVISOR,
      inject: [TRANSACTOR],
      useFactory: (tx: Transactor) =>
        new RunSupervisor(tx, {
          flowTimeoutSeconds: config.AP_FLOW_TIMEOUT_SECONDS,
          orphanRunSeconds: config.AP_ORPHAN_RUN_SECONDS,
          batchSize: config.SUPERVISOR_BATCH_SIZE,
        }),
    },
    SupervisorService,
    InternalTokenGuard,
  ],
})
export class AppModule {}
