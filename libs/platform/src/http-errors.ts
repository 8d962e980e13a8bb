import {
  Catch,
  HttpException,
  HttpStatus,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import {
  HTTP_STATUS_BY_CODE,
  isDomainError,
  type DomainError,
  type ErrorCode,
  type ErrorEnvelope,
} from '@flowruns/contracts';
import type { Response } from 'express';
import { z } from 'zod';
import { componentLogger } from './logger';
import { isConnectionError } from './unavailable';

/** An HTTP answer carrying the error envelope `{ statusCode, code, params }`. */
export class EnvelopeException extends HttpException {
  constructor(readonly envelope: ErrorEnvelope) {
    super(envelope, envelope.statusCode);
  }

  static of(code: ErrorCode, params: Record<string, unknown> = {}, statusCode = HTTP_STATUS_BY_CODE[code]) {
    return new EnvelopeException({ statusCode, code, params });
  }

  static fromDomain(error: DomainError): EnvelopeException {
    return EnvelopeException.of(error.code, { ...error.params });
  }
}

/** Validates input with a zod schema; the 400 names the first offending field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, where = 'body'): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = issue.path.length ? issue.path.map(String).join('.') : where;
  throw EnvelopeException.of('VALIDATION', {
    field,
    message: issue.message,
    issues: r.error.issues.slice(0, 10).map((i) => ({ field: i.path.map(String).join('.') || where, message: i.message })),
  });
}

/** Unwraps a use case's answer: a domain error becomes its HTTP envelope. */
export function orThrow<T>(result: T | DomainError): T {
  if (isDomainError(result)) throw EnvelopeException.fromDomain(result);
  return result;
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'VALIDATION',
  401: 'UNAUTHORIZED',
  404: 'ENTITY_NOT_FOUND',
  413: 'PAYLOAD_TOO_LARGE',
  503: 'SERVICE_UNAVAILABLE',
};

/**
 * Where the error filter leaves, on the response's `locals`, the outcome a metric counts for an
 * error answer: the envelope's code when the code refused on purpose (`EnvelopeException`), else
 * `error` (anything unexpected, whatever envelope it was answered with).
 */
export const ERROR_OUTCOME = 'errorOutcome';

/** Every error leaves as the envelope; anything unexpected is a logged 500 without internals. */
@Catch()
export class ErrorEnvelopeFilter implements ExceptionFilter {
  private readonly log = componentLogger('http-errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const req = host.switchToHttp().getRequest<{ method: string; url: string }>();
    // A failed readiness check keeps terminus's body: which dependency is down is its whole point.
    if (exception instanceof HttpException && req.url.startsWith('/health/')) {
      res.status(exception.getStatus()).json(exception.getResponse());
      return;
    }
    const envelope = this.toEnvelope(exception, req);
    res.locals[ERROR_OUTCOME] = exception instanceof EnvelopeException ? exception.envelope.code : 'error';
    if (envelope.statusCode >= 500) {
      this.log.error({ err: exception, method: req.method, url: req.url }, 'request failed');
    }
    res.status(envelope.statusCode).json(envelope);
  }

  private toEnvelope(exception: unknown, req: { method: string; url: string }): ErrorEnvelope {
    if (exception instanceof EnvelopeException) return exception.envelope;
    // An outage of a data source is a 503 the client may retry, never a 500.
    if (isConnectionError(exception)) {
      this.log.error({ err: (exception as Error).message, method: req.method, url: req.url }, 'dependency unavailable');
      return { statusCode: 503, code: 'SERVICE_UNAVAILABLE', params: { message: 'a dependency is unavailable; retry later' } };
    }
    const e = exception as { status?: number; statusCode?: number; message?: string };
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      if (status === HttpStatus.NOT_FOUND) {
        return {
          statusCode: 404,
          code: 'ENTITY_NOT_FOUND',
          params: { entityType: 'route', entityId: `${req.method} ${req.url.split('?')[0]}`, message: 'Route not found' },
        };
      }
      const code = CODE_BY_STATUS[status] ?? (status < 500 ? 'VALIDATION' : 'INTERNAL_ERROR');
      return { statusCode: status, code, params: { message: exception.message } };
    }
    const status = e?.status ?? e?.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return { statusCode: status, code: CODE_BY_STATUS[status] ?? 'VALIDATION', params: { message: e.message } };
    }
    return { statusCode: 500, code: 'INTERNAL_ERROR', params: { message: 'internal error' } };
  }
}

/**
 * Express error middleware to place right after a body parser: its errors become envelopes while
 * their `type` is still known (Nest would reduce a JSON syntax error to a bare 400).
 */
export function bodyParserErrors(err: unknown, _req: unknown, _res: unknown, next: (e?: unknown) => void): void {
  const e = err as { type?: string; message?: string; limit?: number };
  switch (e?.type) {
    case 'entity.too.large':
      return next(EnvelopeException.of('PAYLOAD_TOO_LARGE', { field: 'body', message: `request body larger than ${e.limit} bytes` }));
    case 'entity.parse.failed':
      return next(EnvelopeException.of('VALIDATION', { field: 'body', message: `malformed JSON: ${e.message}` }));
    case 'encoding.unsupported':
    case 'charset.unsupported':
    case 'request.aborted':
    case 'request.size.invalid':
    case 'entity.verify.failed':
      return next(EnvelopeException.of('VALIDATION', { field: 'body', message: e.message ?? 'unreadable body' }));
    default:
      return next(err);
  }
}
