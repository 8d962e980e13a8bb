import { Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { GATEWAY_CONFIG, type GatewayConfig } from './config';
import { GatewaySql } from './gateway-sql';
import { IdempotencyInterceptor } from './idempotency/idempotency.interceptor';
import { IdempotencyStore } from './idempotency/idempotency-store';
import { IdempotencySweeper } from './idempotency/idempotency-sweeper';
import { RATE_LIMITER, RateLimitInterceptor } from './rate-limit/rate-limit.interceptor';
import { RequestRateLimiter } from './rate-limit/request-rate-limiter';

/**
 * What the gateway does to a public request between the guards and the handler: the per-key rate
 * limit, then `Idempotency-Key`. Global interceptors run in the order they are provided here, and
 * that order is the point: a request refused with 429 must not claim an idempotency key.
 */
@Module({
  providers: [
    {
      provide: RATE_LIMITER,
      inject: [GATEWAY_CONFIG],
      useFactory: (config: GatewayConfig) =>
        config.GATEWAY_RATE_LIMIT_PER_SECOND > 0
          ? new RequestRateLimiter(config.GATEWAY_RATE_LIMIT_PER_SECOND, config.GATEWAY_RATE_LIMIT_BURST)
          : null,
    },
    {
      provide: IdempotencyStore,
      inject: [GatewaySql, GATEWAY_CONFIG],
      useFactory: (sql: GatewaySql, config: GatewayConfig) =>
        new IdempotencyStore(() => sql, {
          ttlSeconds: config.GATEWAY_IDEMPOTENCY_TTL_SECONDS,
          lockSeconds: config.GATEWAY_IDEMPOTENCY_LOCK_SECONDS,
        }),
    },
    IdempotencySweeper,
    { provide: APP_INTERCEPTOR, useClass: RateLimitInterceptor },
    { provide: APP_INTERCEPTOR, useClass: IdempotencyInterceptor },
  ],
})
export class RequestControlModule {}
