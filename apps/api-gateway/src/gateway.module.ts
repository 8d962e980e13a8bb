import { Global, Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown, type Type } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { MikroORM } from '@mikro-orm/postgresql';
import { ApiKeyStore } from '@flowruns/access';
import { ormOptions, probePostgres } from '@flowruns/database';
import { createKafka, probeKafka, type Admin } from '@flowruns/messaging';
import { HealthModule, MetricsModule, READINESS_PROBES, RouteParamsPipe, loggerModule, type ReadinessProbe } from '@flowruns/platform';
import { ApiKeyCache } from './auth/api-key-cache';
import { ApiKeyGuard } from './auth/api-key.guard';
import { CommandClient } from './command-client';
import { GATEWAY_CONFIG, type GatewayConfig } from './config';
import { GatewayErrorFilter } from './error-filter';
import { FlowRunsController } from './flow-runs.controller';
import { FlowsController } from './flows.controller';
import { MeController } from './me.controller';
import { RequestControlModule } from './request-control.module';
import { ResumeController } from './resume.controller';
import { RunDataController } from './run-data.controller';
import { GatewaySql } from './gateway-sql';
import { RunQueries } from './run-queries';

/** The Kafka admin client, held only for the readiness probe; disconnected on shutdown. */
@Injectable()
export class KafkaProbe implements OnApplicationShutdown {
  readonly admin: Admin;

  constructor(@Inject(GATEWAY_CONFIG) config: GatewayConfig) {
    this.admin = createKafka({ brokers: config.KAFKA_BROKERS, clientId: `${config.KAFKA_CLIENT_ID}-gateway` }).admin();
    // Connect in the background: the gateway starts (and reports not ready) while the broker is away.
    this.admin.connect().catch(() => undefined);
  }

  check(): Promise<{ brokers: number }> {
    return probeKafka(this.admin);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.admin.disconnect();
  }
}

/**
 * Config and the clients the readiness probes need, global so that the health module (a module of
 * its own) can inject them.
 */
@Global()
@Module({})
class GatewayCoreModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: GatewayCoreModule,
      providers: [
        { provide: GATEWAY_CONFIG, useValue: config },
        CommandClient,
        KafkaProbe,
        {
          provide: GatewaySql,
          inject: [MikroORM],
          useFactory: (orm: MikroORM) => new GatewaySql(config, orm),
        },
      ],
      exports: [GATEWAY_CONFIG, CommandClient, KafkaProbe, GatewaySql],
    };
  }
}

/**
 * The public REST gateway: auth, validation, the error envelope; reads the run views and sends
 * every change to the command service. Holds no state but the API key cache.
 */
@Module({})
export class GatewayModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: GatewayModule,
      imports: [
        GatewayCoreModule.forRoot(config),
        loggerModule(),
        MikroOrmModule.forRoot({
          ...ormOptions({ url: config.DATABASE_URL, entities: [], poolMax: 1 }),
          // Its SQL formatter only (GatewaySql): no per-request middleware, no queries.
          registerRequestContext: false,
        }),
        MetricsModule,
        // Rate limit, then Idempotency-Key, on every /api route (after the guards).
        RequestControlModule,
        HealthModule.forProbes({
          provide: READINESS_PROBES,
          inject: [GatewaySql, KafkaProbe, CommandClient],
          useFactory: (sql: GatewaySql, kafka: KafkaProbe, commands: CommandClient): ReadinessProbe[] => [
            { name: 'postgres', check: () => probePostgres(sql) },
            { name: 'kafka', check: () => kafka.check() },
            { name: 'command-service', check: () => commands.probe() },
          ],
        }),
      ],
      // RunDataController first: its `export` route must match before FlowRunsController's `:id`.
      controllers: [RunDataController, FlowRunsController, FlowsController, ResumeController, MeController],
      providers: [
        { provide: APP_FILTER, useClass: GatewayErrorFilter },
        // Every path parameter is an id: 1 to 256 characters, no U+0000, or 400 naming it.
        { provide: APP_PIPE, useClass: RouteParamsPipe },
        {
          provide: ApiKeyCache,
          inject: [GatewaySql],
          useFactory: (sql: GatewaySql) =>
            new ApiKeyCache((key) => new ApiKeyStore(sql).verify(key), {
              ttlMs: config.AUTH_CACHE_TTL_MS,
              negativeTtlMs: config.AUTH_NEGATIVE_CACHE_TTL_MS,
              maxEntries: config.AUTH_CACHE_MAX_ENTRIES,
            }),
        },
        ApiKeyGuard,
        RunQueries,
      ],
    };
  }
}

/** A root module class for `NestFactory.create` (which the shared bootstrap takes as a class). */
export function gatewayRootModule(config: GatewayConfig): Type<unknown> {
  @Module({ imports: [GatewayModule.forRoot(config)] })
  class ApiGatewayModule {}
  return ApiGatewayModule;
}
