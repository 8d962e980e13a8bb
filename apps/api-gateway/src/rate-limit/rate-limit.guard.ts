import { Inject, Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { EnvelopeException } from '@flowruns/platform';
import type { Request, Response } from 'express';
import { defer, mergeMap, type Observable } from 'rxjs';
import type { AuthenticatedRequest } from '../auth/principal';
import { RequestRateLimiter, rateLimitHeaders } from './request-rate-limiter';

/** The limiter, or null when `GATEWAY_RATE_LIMIT_PER_SECOND` is 0 (no limit). */
export const RATE_LIMITER = Symbol('RATE_LIMITER');

/**
 * Per-key rate limit on the public API (`/api/...`; health and metrics are never limited): 429
 * `RATE_LIMITED` with `Retry-After` past the budget, `RateLimit-*` headers on every answer.
 *
 * An interceptor because it must run after `ApiKeyGuard`: the budget is the API key's (its id, so
 * two keys of one project are limited apart). The resume routes take no key and are limited per
 * client address (`req.ip`: the socket's peer unless Express is told to trust a proxy). A request
 * the guard refuses never reaches here, so invalid keys are not counted (the negative key cache
 * keeps them cheap). Registered before the idempotency interceptor: a refused request claims no key.
 */
@Injectable()
export class RateLimitInterceptor implements NestInterceptor {
  constructor(@Inject(RATE_LIMITER) private readonly limiter: RequestRateLimiter | null) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = ctx.switchToHttp().getRequest<Request & AuthenticatedRequest>();
    if (!this.limiter || !req.path.startsWith('/api/')) return next.handle();
    const limiter = this.limiter;
    const res = ctx.switchToHttp().getResponse<Response>();
    const key = req.principal ? `key:${req.principal.keyId}` : `ip:${req.ip ?? 'unknown'}`;
    return defer(() => limiter.take(key)).pipe(
      mergeMap((decision) => {
        res.set(rateLimitHeaders(decision));
        if (!decision.allowed) {
          res.setHeader('Retry-After', String(decision.resetSeconds));
          throw EnvelopeException.of('RATE_LIMITED', {
            retryAfterSeconds: decision.resetSeconds,
            message: `too many requests; retry in ${decision.resetSeconds} s`,
          });
        }
        return next.handle();
      }),
    );
  }
}
