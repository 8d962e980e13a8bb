import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication, NestExpressBodyParserOptions } from '@nestjs/platform-express';
import { bodyParserErrors, jsonBodyGuard } from '@flowruns/platform';
import type { GatewayConfig } from './config';
import { serveOpenApi } from './openapi/openapi.setup';
import { serveDashboard } from './ui/dashboard';

/**
 * The gateway's HTTP pipeline in front of Nest's router, after timing and tracing (`observeHttp`,
 * which bootstrapHttpApp mounts first), in order: the JSON body parser with its size limit, the translation of
 * body-parser errors into envelopes, and the refusal of bodies nested deeper than
 * `GATEWAY_JSON_MAX_DEPTH` or holding text Postgres cannot store (U+0000); then the API docs
 * (`/api/docs`) and the runs dashboard (`/ui`). Used by main.ts and by tests that boot the app
 * in-process. Call before `listen`/`init`; the app must be created with `bodyParser: false`.
 */
export function configureGateway(app: INestApplication, config: GatewayConfig): void {
  const express = app as NestExpressApplication;
  express.disable('x-powered-by');
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
