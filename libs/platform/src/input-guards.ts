import { Injectable, type ArgumentMetadata, type PipeTransform } from '@nestjs/common';
import { IdSchema, findUnstorableJson } from '@flowruns/contracts';
import type { NextFunction, Request, Response } from 'express';
import { EnvelopeException } from './http-errors';

/**
 * Input that would fail in Postgres or in recursive code downstream, refused at the door as a 400
 * naming the field instead of surfacing later as a 500 (or a 503 from the next service).
 */

/**
 * Express middleware to mount right after the JSON body parser (and its error handler): a parsed
 * body nested deeper than `maxDepth`, or holding a key or string Postgres cannot store (U+0000, an
 * unpaired surrogate), answers 400 VALIDATION with `field: 'body'` and `path` inside it. It runs
 * before any interceptor, so nothing (idempotency fingerprints, logs, the forward to the command
 * service) ever serialises such a body. Iterative: a 400 000-level body costs no stack.
 */
export function jsonBodyGuard(opts: { maxDepth: number; skip?: (req: Request) => boolean }) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    // No parsed body (no body, another content type): nothing to check. `skip`: a route that checks
    // the parts of its body one by one (a batch answering each part on its own).
    if (req.body === undefined || opts.skip?.(req)) return next();
    const problem = findUnstorableJson(req.body, opts.maxDepth);
    if (!problem) return next();
    next(EnvelopeException.of('VALIDATION', { field: 'body', ...(problem.path ? { path: problem.path } : {}), message: problem.message }));
  };
}

/**
 * A pipe for every path parameter of a controller (or of the app, as APP_PIPE): each must be an id
 * as `IdSchema` defines it — 1 to 256 characters, no U+0000 — or the request answers 400
 * VALIDATION naming the parameter. Other arguments (body, query, custom decorators) pass through.
 */
@Injectable()
export class RouteParamsPipe implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (metadata.type !== 'param') return value;
    // `@Param()` without a name hands over every parameter at once.
    const entries = metadata.data ? [[metadata.data, value] as const] : Object.entries((value ?? {}) as Record<string, unknown>);
    for (const [name, v] of entries) {
      const r = IdSchema.safeParse(v);
      if (!r.success) throw EnvelopeException.of('VALIDATION', { field: name, message: r.error.issues[0].message });
    }
    return value;
  }
}
