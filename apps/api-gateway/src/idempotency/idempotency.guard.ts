import { Catch, Inject, Injectable, type ArgumentsHost, type CanActivate, type ExceptionFilter, type ExecutionContext } from '@nestjs/common';
import { ERROR_OUTCOME, EnvelopeException, componentLogger } from '@flowruns/platform';
import type { Request, Response } from 'express';
import type { AuthenticatedRequest } from '../auth/principal';
import { IdempotencyStore, type StoredAnswer } from './idempotency-store';
import { IDEMPOTENCY_HEADER, parseIdempotencyKey, requestFingerprint } from './request-fingerprint';

/**
 * `Idempotency-Key` on every POST of the public API: the same key with the same request answers
 * the first answer again (status, body, Location) without doing the work twice.
 *
 * A guard after the route's other guards: the key's scope is the API key's project, which
 * `ApiKeyGuard` puts on the request (a request the guard refuses never claims a key), and the rate
 * limiter comes first too, so a request refused with 429 never claims a key either. Routes without
 * an API key (resume) are scoped by their path. A guard, not an interceptor: Nest puts a route with
 * an interceptor through its observable pipeline and binds two `AsyncResource`s per request (~22 µs
 * each on Node 20), paid by every POST whether or not it carries a key; a POST without one costs
 * this guard a header lookup.
 *
 * A claimed key's answer is kept from the response itself, just before it is sent: whatever the
 * route or the error filter answers passes `res.send`, which waits for the store. Only final
 * answers are kept: a 2xx, and a 4xx envelope the code refused with on purpose (a validation error
 * or the command service's refusal would be the same on a retry). A 5xx, or an error that is not an
 * envelope (`ERROR_OUTCOME` says which), releases the key so the client can try again; a gateway
 * that dies mid-request leaves the key claimed until `GATEWAY_IDEMPOTENCY_LOCK_SECONDS` passes. The
 * answer is kept before it is sent, so a client that saw it and retries always gets the replay, and
 * it is kept even when the client went away meanwhile: the work was done, and the client's retry
 * must not do it again. A replay is answered by `IdempotentReplayFilter` (the route's own filter).
 */
@Injectable()
export class IdempotencyGuard implements CanActivate {
  private readonly log = componentLogger('idempotency');

  constructor(@Inject(IdempotencyStore) private readonly store: IdempotencyStore) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest<Request & AuthenticatedRequest>();
    if (req.method !== 'POST' || !req.path.startsWith('/api/v1/')) return true;
    const key = parseIdempotencyKey(req.headers['idempotency-key']);
    if (key === null) return true;
    const res = ctx.switchToHttp().getResponse<Response>();

    const scope = req.principal ? `project:${req.principal.projectId}` : `path:${req.path}`;
    const claim = await this.store.claim(scope, key, requestFingerprint(req.method, req.originalUrl, req.body));
    switch (claim.kind) {
      case 'claimed':
        this.keepAnswerOf(res, scope, key, claim.owner);
        return true;
      case 'replay':
        throw new IdempotentReplay(claim.answer);
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
  }

  /**
   * Holds the request's answer at `res.send` (Express's `res.json` ends there too) until the key
   * has its fate: the answer kept if it is final, else the key released. One answer per request:
   * the hook puts the original back before it sends.
   */
  private keepAnswerOf(res: Response, scope: string, key: string, owner: string): void {
    const send = res.send;
    res.send = ((body?: unknown) => {
      res.send = send;
      const outcome = res.locals[ERROR_OUTCOME];
      const status = res.statusCode;
      const final = status < 400 || (status < 500 && typeof outcome === 'string' && outcome !== 'error');
      const location = res.getHeader('location');
      const decided = final
        ? this.keep(scope, key, owner, () => ({ statusCode: status, body: answerBody(res, body), location: status < 400 && typeof location === 'string' ? location : null }))
        : this.release(scope, key, owner);
      // The answer leaves after the store, off this call's stack: a failure to send it (the
      // socket gone, headers already out) is logged, never an unhandled rejection.
      decided
        .then(() => send.call(res, body))
        .catch((err: unknown) => this.log.error({ err, scope, statusCode: status }, 'could not send an idempotent answer'));
      return res;
    }) as Response['send'];
  }

  // Neither write may turn the request's own answer into an error: if Postgres fails here, the
  // claim simply stays until its lock expires (the client then gets 409, never a second execution).
  private async keep(scope: string, key: string, owner: string, answerOf: () => StoredAnswer): Promise<void> {
    try {
      await this.store.complete(scope, key, owner, answerOf());
    } catch (err) {
      this.log.warn({ err, scope }, 'could not keep an idempotent answer; the key stays claimed until its lock expires');
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

/** What a kept answer's body is: the JSON the route or the error filter sent, parsed; null for none. */
function answerBody(res: Response, sent: unknown): unknown {
  if (sent === undefined || sent === null) return null;
  const text = Buffer.isBuffer(sent) ? sent.toString('utf8') : String(sent);
  if (text === '') return null;
  const type = res.getHeader('content-type');
  return typeof type === 'string' && type.includes('json') ? JSON.parse(text) : text;
}

/** A kept answer to send again instead of running the route (thrown by `IdempotencyGuard`). */
export class IdempotentReplay extends Error {
  constructor(readonly answer: StoredAnswer) {
    super('idempotent replay');
  }
}

/**
 * Answers a kept answer again (marked `Idempotent-Replayed: true`): an error as its envelope, a
 * success with its status and Location. Bound with the guard on each POST route (`@Idempotent()`):
 * a route's own filter takes the exceptions it catches before the global error filter does.
 */
@Catch(IdempotentReplay)
export class IdempotentReplayFilter implements ExceptionFilter<IdempotentReplay> {
  catch({ answer }: IdempotentReplay, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    res.setHeader('Idempotent-Replayed', 'true');
    if (answer.statusCode < 400 && answer.location !== null) res.setHeader('Location', answer.location);
    res.status(answer.statusCode);
    if (answer.body === null || answer.body === undefined) res.send();
    else res.json(answer.body);
  }
}
