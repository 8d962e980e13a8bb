import { applyDecorators, Module, UseFilters, UseGuards } from '@nestjs/common';
import { ApiKeyGuard } from './auth/api-key.guard';
import { GATEWAY_CONFIG, type GatewayConfig } from './config';
import { GatewaySql } from './gateway-sql';
import { IdempotencyGuard, IdempotentReplayFilter } from './idempotency/idempotency.guard';
import { IdempotencyStore } from './idempotency/idempotency-store';
import { IdempotencySweeper } from './idempotency/idempotency-sweeper';
import { RATE_LIMITER, RateLimitGuard } from './rate-limit/rate-limit.guard';
import { RequestRateLimiter } from './rate-limit/request-rate-limiter';

/**
 * What the gateway does to a public request before the handler: the API key (where the route takes
 * one), the per-key rate limit, then `Idempotency-Key` on POSTs — all guards, run in that order (the
 * controller's, then the route's), and that order is the point: a request without a valid key is
 * not counted, and one refused with 429 never claims an idempotency key.
 *
 * Bound per controller and per POST route (the decorators below), not globally, and no route has an
 * interceptor: Nest runs a route with one through its observable pipeline and two `AsyncResource`
 * binds per request. `request-control.spec.ts` checks that every public route has them.
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
    IdempotencyGuard,
  ],
  exports: [RATE_LIMITER, IdempotencyStore, RateLimitGuard, IdempotencyGuard],
})
export class RequestControlModule {}

/** The guards of a public controller whose routes take an API key: the key, then its rate limit. */
export const KeyedApi = () => UseGuards(ApiKeyGuard, RateLimitGuard);

/** The guard of a public controller whose routes take no key (resume): the rate limit, per client address. */
export const KeylessApi = () => UseGuards(RateLimitGuard);

/**
 * `Idempotency-Key` on a public POST route (the same key with the same request answers the first
 * answer again): its guard, after the controller's, and the filter that answers a replay.
 */
export const Idempotent = () => applyDecorators(UseGuards(IdempotencyGuard), UseFilters(IdempotentReplayFilter));
