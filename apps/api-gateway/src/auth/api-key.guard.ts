import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { looksLikeApiKey } from '@flowruns/access';
import { EnvelopeException, componentLogger } from '@flowruns/platform';
import type { Response } from 'express';
import { ApiKeyCache } from './api-key-cache';
import type { AuthenticatedRequest } from './principal';

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/** The bearer token of an Authorization header, or null. */
export function bearerToken(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string') return null;
  return BEARER.exec(header)?.[1] ?? null;
}

/**
 * `Authorization: Bearer sk-...`, verified against the API key store (through a short-lived
 * cache). Missing, malformed, unknown and revoked keys all answer the same 401.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly log = componentLogger('auth');

  constructor(@Inject(ApiKeyCache) private readonly cache: ApiKeyCache) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const http = ctx.switchToHttp();
    const req = http.getRequest<AuthenticatedRequest & { headers: Record<string, string | string[] | undefined> }>();
    const key = bearerToken(req.headers.authorization);
    // A malformed key never reaches the store or the cache.
    const principal = key && looksLikeApiKey(key) ? await this.cache.principalOf(key) : null;
    if (!principal) {
      this.log.debug({ keyPrefix: key?.slice(0, 7) ?? null }, 'request without a valid API key');
      http.getResponse<Response>().setHeader('WWW-Authenticate', 'Bearer');
      throw EnvelopeException.of('UNAUTHORIZED', {
        message: key ? 'API key is not valid' : 'an API key is required: Authorization: Bearer <key>',
      });
    }
    req.principal = principal;
    return true;
  }
}
