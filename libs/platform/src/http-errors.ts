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

/** Every error leaves as the envelope; anything unexpected is a logged 500 without internals. */
@Catch()
export class ErrorEnvelopeFilter implements ExceptionFilter {
  private readonly log = componentLogger('http-errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const req = host.switchToHttp().getRequest<{ method: string; url: string }>();
    const envelope = this.toEnvelope(exception, req);
    if (envelope.statusCode >= 500) {
      this.log.error({ err: exception, method: req.method, url: req.url }, 'request failed');
    }
    res.status(envelope.statusCode).json(envelope);
  }

  private toEnvelope(exception: unknown, req: { method: string; url: string }): ErrorEnvelope {
    if (exception instanceof EnvelopeException) return exception.envelope;
    // body-parser errors carry a status and a type (entity.too.large, entity.parse.failed, ...).
    const e = exception as { status?: number; statusCode?: number; type?: string; message?: string };
    if (e?.type === 'entity.too.large') {
      return { statusCode: 413, code: 'PAYLOAD_TOO_LARGE', params: { message: 'request body too large' } };
    }
    if (e?.type === 'entity.parse.failed' || e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') {
      return { statusCode: 400, code: 'VALIDATION', params: { field: 'body', message: e.message ?? 'malformed body' } };
    }
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

/** Wraps a promise from a data source so that an outage answers 503 rather than hanging or 500. */
export const isConnectionError = (e: unknown): boolean => {
  const code = (e as { code?: string })?.code ?? '';
  return ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57P01', '57P03', '08006', '08001', '08003'].includes(code);
};
