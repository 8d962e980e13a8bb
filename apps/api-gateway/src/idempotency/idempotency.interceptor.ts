import { Inject, Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import type { ErrorEnvelope } from '@flowruns/contracts';
import { EnvelopeException, componentLogger } from '@flowruns/platform';
import type { Request, Response } from 'express';
import { catchError, concatMap, defer, mergeMap, of, type Observable } from 'rxjs';
import type { AuthenticatedRequest } from '../auth/principal';
import { IdempotencyStore, type StoredAnswer } from './idempotency-store';
import { IDEMPOTENCY_HEADER, parseIdempotencyKey, requestFingerprint } from './request-fingerprint';

/**
 * `Idempotency-Key` on every POST of the public API: the same key with the same request answers
 * the first answer again (status, body, Location) without doing the work twice.
 *
 * An interceptor rather than a middleware because it must run after the guards: the key's scope is
 * the API key's project, which `ApiKeyGuard` puts on the request (and a request the guard refuses
 * never claims a key). It is on the POST routes only (`@Idempotent()`), after their guards — the
 * rate limiter's too, so a request refused with 429 never claims a key either — and costs Nest's
 * interceptor machinery (two `AsyncResource` binds, ~22 µs each on Node 20) on those routes alone.
 * Routes without an API key (resume) are scoped by their path.
 *
 * Only final answers are kept: a 2xx, and a 4xx envelope (a validation error or the command
 * service's refusal would be the same on a retry). A 5xx, or any error that is not an envelope,
 * releases the key so the client can try again; a gateway that dies mid-request leaves the key
 * claimed until `GATEWAY_IDEMPOTENCY_LOCK_SECONDS` passes. The answer is kept before it is sent,
 * so a client that saw it and retries always gets the replay, and it is kept even when the client
 * went away meanwhile: the work was done, and the client's retry must not do it again.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  private readonly log = componentLogger('idempotency');

  constructor(@Inject(IdempotencyStore) private readonly store: IdempotencyStore) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = ctx.switchToHttp().getRequest<Request & AuthenticatedRequest>();
    const res = ctx.switchToHttp().getResponse<Response>();
    if (req.method !== 'POST' || !req.path.startsWith('/api/v1/')) return next.handle();
    const key = parseIdempotencyKey(req.headers['idempotency-key']);
    if (key === null) return next.handle();

    const scope = req.principal ? `project:${req.principal.projectId}` : `path:${req.path}`;
    const hash = requestFingerprint(req.method, req.originalUrl, req.body);
    return defer(() => this.store.claim(scope, key, hash)).pipe(
      mergeMap((claim) => {
        switch (claim.kind) {
          case 'claimed':
            return this.runOnce(next, res, scope, key, claim.owner);
          case 'replay':
            return of(replay(claim.answer, res));
          case 'mismatch':
            throw EnvelopeException.of('IDEMPOTENCY_KEY_REUSED', {
              header: IDEMPOTENCY_HEADER,
              message: 'this Idempotency-Key was already used for another request (method, path or body)',
            });
          case 'in-progress':
            res.setHeader('Retry-After', '1');
            throw EnvelopeException.of('IDEMPOTENCY_KEY_IN_PROGRESS', {
              header: IDEMPOTENCY_HEADER,
              message: 'a request with this Idempotency-Key is still in progress; retry later',
            });
          default: {
            const never: never = claim;
            throw new Error(`unhandled claim ${JSON.stringify(never)}`);
          }
        }
      }),
    );
  }

  /** Runs the handler and keeps its final answer (or frees the key) before the answer leaves. */
  private runOnce(next: CallHandler, res: Response, scope: string, key: string, owner: string): Observable<unknown> {
    return next.handle().pipe(
      concatMap(async (body: unknown) => {
        const location = res.getHeader('location');
        await this.keep(scope, key, owner, { statusCode: res.statusCode, body, location: typeof location === 'string' ? location : null });
        return body;
      }),
      // The error itself goes on to the error filter unchanged; only the key's fate is decided here.
      catchError((err: unknown) =>
        defer(async () => {
          const envelope = finalEnvelope(err);
          if (envelope) await this.keep(scope, key, owner, { statusCode: envelope.statusCode, body: envelope, location: null });
          else await this.release(scope, key, owner);
          throw err;
        }),
      ),
    );
  }

  // Neither write may turn the request's own answer into an error: if Postgres fails here, the
  // claim simply stays until its lock expires (the client then gets 409, never a second execution).
  private async keep(scope: string, key: string, owner: string, answer: StoredAnswer): Promise<void> {
    try {
      await this.store.complete(scope, key, owner, answer);
    } catch (err) {
      this.log.warn({ err, scope, statusCode: answer.statusCode }, 'could not keep an idempotent answer; the key stays claimed until its lock expires');
    }
  }

  private async release(scope: string, key: string, owner: string): Promise<void> {
    try {
      await this.store.release(scope, key, owner);
    } catch (err) {
      this.log.warn({ err, scope }, 'could not release an idempotency key; it stays claimed until its lock expires');
    }
  }
}

/** The envelope of an error that is a final answer (a 4xx the gateway answers as an envelope), else null. */
export function finalEnvelope(err: unknown): ErrorEnvelope | null {
  return err instanceof EnvelopeException && err.envelope.statusCode < 500 ? err.envelope : null;
}

/**
 * Answers a kept answer again (marked `Idempotent-Replayed: true`): an error through the error
 * filter, a success with its status and Location.
 */
function replay(answer: StoredAnswer, res: Response): unknown {
  res.setHeader('Idempotent-Replayed', 'true');
  if (answer.statusCode >= 400) throw new EnvelopeException(answer.body as ErrorEnvelope);
  res.status(answer.statusCode);
  if (answer.location !== null) res.setHeader('Location', answer.location);
  return answer.body;
}
