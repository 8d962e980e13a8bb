import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { EnvelopeException } from '@flowruns/platform';
import type { Request, Response } from 'express';
import type { AuthenticatedRequest } from '../auth/principal';
import { RequestRateLimiter, rateLimitHeaders } from './request-rate-limiter';

/** The limiter, or null when `GATEWAY_RATE_LIMIT_PER_SECOND` is 0 (no limit). */
export const RATE_LIMITER = Symbol('RATE_LIMITER');

/**
 * Per-key rate limit on the public API (`/api/...`; health and metrics are never limited): 429
 * `RATE_LIMITED` with `Retry-After` past the budget, `RateLimit-*` headers on every answer.
 *
 * A guard listed after `ApiKeyGuard` on every public controller (`PUBLIC_API_GUARDS`): the budget
 * is the API key's (its id, so two keys of one project are limited apart). The resume routes take
 * no key and are limited per client address (`req.ip`: the socket's peer unless Express is told to
 * trust a proxy). A request `ApiKeyGuard` refuses never reaches here, so invalid keys are not
 * counted (the negative key cache keeps them cheap); and the idempotency guard is the route's, so
 * it runs after this controller's guard: a request refused here claims no `Idempotency-Key`.
 *
 * A guard rather than an interceptor, as it was until session 19: a global interceptor puts every
 * request, the list's GETs included, through Nest's observable pipeline (rxjs `defer`/`mergeAll`
 * and an `AsyncResource` per layer). With it and the idempotency interceptor global, the gateway
 * allocated 170 KB per list request; without them 137 KB (bench/notes.md, session 19). The
 * idempotency interceptor became a guard as well (session 24).
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  constructor(@Inject(RATE_LIMITER) private readonly limiter: RequestRateLimiter | null) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest<Request & AuthenticatedRequest>();
    if (!this.limiter || !req.path.startsWith('/api/')) return true;
    const res = ctx.switchToHttp().getResponse<Response>();
    const key = req.principal ? `key:${req.principal.keyId}` : `ip:${req.ip ?? 'unknown'}`;
    const decision = await this.limiter.take(key);
    res.set(rateLimitHeaders(decision));
    if (!decision.allowed) {
      res.setHeader('Retry-After', String(decision.resetSeconds));
      throw EnvelopeException.of('RATE_LIMITED', {
        retryAfterSeconds: decision.resetSeconds,
        message: `too many requests; retry in ${decision.resetSeconds} s`,
      });
    }
    return true;
  }
}
