import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { HttpCommandClient } from '@flowruns/engine';
import { createKafka, probeKafka, type Admin, type Kafka } from '@flowruns/messaging';
import { ErrorEnvelopeFilter, HealthModule, MetricsModule, READINESS_PROBES, loggerModule, type ReadinessProbe } from '@flowruns/platform';
import { FLOW_WORKER_CONFIG, type FlowWorkerConfig } from './config';
import { COMMAND_CLIENT, KAFKA, KAFKA_ADMIN, WorkerService } from './worker.service';

/**
 * The clients the worker holds. Global, because the readiness probes are built inside HealthModule
 * and resolve their dependencies from there.
 */
@Module({})
class WorkerCoreModule {
  static forConfig(config: FlowWorkerConfig): DynamicModule {
    return {
      module: WorkerCoreModule,
      global: true,
      providers: [
        { provide: FLOW_WORKER_CONFIG, useValue: config },
        { provide: KAFKA, useFactory: () => createKafka({ brokers: config.KAFKA_BROKERS, clientId: `${config.KAFKA_CLIENT_ID}-worker` }) },
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
        {
          provide: COMMAND_CLIENT,
          useFactory: () =>
            new HttpCommandClient({
              baseUrl: config.COMMAND_SERVICE_URL,
              token: config.INTERNAL_API_TOKEN,
              timeoutMs: config.COMMAND_SERVICE_TIMEOUT_MS,
              batchReports:
                config.FLOW_WORKER_REPORT_BATCH > 0
                  ? { maxReports: config.FLOW_WORKER_REPORT_BATCH, maxChars: 1_000_000, maxInFlight: config.FLOW_WORKER_REPORT_CALLS_IN_FLIGHT }
                  : undefined,
            }),
        },
        WorkerService,
      ],
      exports: [FLOW_WORKER_CONFIG, KAFKA_ADMIN, COMMAND_CLIENT, WorkerService],
    };
  }
}

/**
 * The flow worker: no database. Ready when Kafka answers, the command service answers its liveness
 * probe, and the consumer is in its group.
 */
@Module({})
export class WorkerModule {
  static forConfig(config: FlowWorkerConfig): DynamicModule {
    return {
      module: WorkerModule,
      imports: [
        loggerModule(),
        WorkerCoreModule.forConfig(config),
        MetricsModule,
        HealthModule.forProbes({
          provide: READINESS_PROBES,
          inject: [KAFKA_ADMIN, COMMAND_CLIENT, WorkerService],
          useFactory: (admin: Admin, client: HttpCommandClient, worker: WorkerService): ReadinessProbe[] => [
            { name: 'kafka', check: () => probeKafka(admin) },
            { name: 'command-service', check: () => client.probe() },
            {
              name: 'consumer',
              check: async () => {
                const s = worker.status();
                if (!s.running) throw new Error(`consumer not running: ${s.lastError ?? 'starting'}`);
                return { groupId: s.groupId, workerId: s.workerId, drivesActive: s.active, drivesQueued: s.queued };
              },
            },
          ],
        }),
      ],
      providers: [{ provide: APP_FILTER, useClass: ErrorEnvelopeFilter }],
    };
  }
}
