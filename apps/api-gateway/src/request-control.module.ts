import { Module, UseGuards, UseInterceptors } from '@nestjs/common';
import { ApiKeyGuard } from './auth/api-key.guard';
import { GATEWAY_CONFIG, type GatewayConfig } from './config';
import { GatewaySql } from './gateway-sql';
import { IdempotencyInterceptor } from './idempotency/idempotency.interceptor';
import { IdempotencyStore } from './idempotency/idempotency-store';
import { IdempotencySweeper } from './idempotency/idempotency-sweeper';
import { RATE_LIMITER, RateLimitGuard } from './rate-limit/rate-limit.guard';
import { RequestRateLimiter } from './rate-limit/request-rate-limiter';

/**
 * What the gateway does to a public request before the handler: the API key (where the route takes
 * one), the per-key rate limit, then `Idempotency-Key` on POSTs. Guards run before interceptors and
 * in the order listed, and that order is the point: a request without a valid key is not counted,
 * and one refused with 429 never claims an idempotency key.
 *
 * Bound per controller and per POST route (the decorators below), not globally: a global
 * interceptor runs every request, the list's GETs included, through Nest's observable pipeline.
 * `request-control.spec.ts` checks that every public route has them.
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
    RateLimitGuard,
    IdempotencyInterceptor,
  ],
  exports: [RATE_LIMITER, IdempotencyStore, RateLimitGuard, IdempotencyInterceptor],
})
export class RequestControlModule {}

/** The guards of a public controller whose routes take an API key: the key, then its rate limit. */
export const KeyedApi = () => UseGuards(ApiKeyGuard, RateLimitGuard);

/** The guard of a public controller whose routes take no key (resume): the rate limit, per client address. */
export const KeylessApi = () => UseGuards(RateLimitGuard);

/** `Idempotency-Key` on a public POST route (the same key with the same request answers the first answer again). */
export const Idempotent = () => UseInterceptors(IdempotencyInterceptor);
