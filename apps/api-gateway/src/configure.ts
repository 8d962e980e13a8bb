import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication, NestExpressBodyParserOptions } from '@nestjs/platform-express';
import { bodyParserErrors, httpMetrics, httpTracing, jsonBodyGuard, startTracing } from '@flowruns/platform';
import type { GatewayConfig } from './config';
import { serveOpenApi } from './openapi/openapi.setup';
import { serveDashboard } from './ui/dashboard';

/**
 * The HTTP pipeline in front of Nest's router, in order: timing (first, so 413s and 404s are
 * measured too), trace context, the JSON body parser with its size limit, the translation of
 * body-parser errors into envelopes, and the refusal of bodies nested deeper than
 * `GATEWAY_JSON_MAX_DEPTH` or holding text Postgres cannot store (U+0000); then the API docs
 * (`/api/docs`) and the runs dashboard (`/ui`). Used by main.ts and by tests that boot the app
 * in-process. Call before `listen`/`init`; the app must be created with `bodyParser: false`.
 */
export function configureGateway(app: INestApplication, config: GatewayConfig): void {
  const express = app as NestExpressApplication;
  express.disable('x-powered-by');
  express.use(httpMetrics());
  // A span per request (bootstrapHttpApp mounts it too; the second mount is a no-op), so that
  // tests booting the app in-process trace like the real process.
  startTracing('api-gateway');
  express.use(httpTracing());
  // `strict: false`: a trigger payload may be any JSON value, not only an object or array.
  express.useBodyParser<NestExpressBodyParserOptions & { strict: boolean }>('json', {
    limit: config.GATEWAY_BODY_LIMIT,
    strict: false,
  });
  express.use(bodyParserErrors);
  // Before any interceptor (idempotency fingerprints the body) and before the forward to the
  // command service: a 10 000-level payload there answered 503, a "\u0000" 500.
  express.use(jsonBodyGuard({ maxDepth: config.GATEWAY_JSON_MAX_DEPTH }));
  serveOpenApi(app);
  serveDashboard(app);
}
