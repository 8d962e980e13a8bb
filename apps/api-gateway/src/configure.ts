import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication, NestExpressBodyParserOptions } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import { bodyParserErrors } from '@flowruns/platform';
import type { GatewayConfig } from './config';
import { httpMetricsMiddleware } from './http-metrics';
import { serveOpenApi } from './openapi/openapi.setup';
import { continueTrace, type TracedRequest } from './traceparent';

/**
 * The HTTP pipeline in front of Nest's router, in order: timing (first, so 413s and 404s are
 * measured too), trace context, the JSON body parser with its size limit, and the translation of
 * body-parser errors into envelopes; then the API docs (`/api/docs`). Used by main.ts and by
 * tests that boot the app in-process. Call before `listen`/`init`; the app must be created with
 * `bodyParser: false`.
 */
export function configureGateway(app: INestApplication, config: GatewayConfig): void {
  const express = app as NestExpressApplication;
  express.disable('x-powered-by');
  express.use(httpMetricsMiddleware);
  express.use((req: Request, _res: Response, next: NextFunction) => {
    (req as unknown as TracedRequest).trace = continueTrace(req.headers.traceparent);
    next();
  });
  // `strict: false`: a trigger payload may be any JSON value, not only an object or array.
  express.useBodyParser<NestExpressBodyParserOptions & { strict: boolean }>('json', {
    limit: config.GATEWAY_BODY_LIMIT,
    strict: false,
  });
  express.use(bodyParserErrors);
  serveOpenApi(app);
}
