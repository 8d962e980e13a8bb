import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication, NestExpressBodyParserOptions } from '@nestjs/platform-express';
import { bodyParserErrors, jsonBodyGuard } from '@flowruns/platform';
import type { CommandServiceConfig } from './config';

/** The batch route, whose body's reports are checked one by one. */
export const REPORTS_PATH = '/internal/reports';

/**
 * The HTTP pipeline in front of the internal API: the JSON body parser with its size limit, its
 * errors as envelopes, and the refusal (400) of bodies nested deeper than
 * `COMMAND_SERVICE_JSON_MAX_DEPTH` or holding text Postgres cannot store (U+0000, an unpaired
 * surrogate) — other services call this API too, and such a body must not reach the database as
 * a 500. Used by main.ts and by tests that boot the app in-process; the app must be created with
 * `bodyParser: false`.
 */
export function configureCommandService(app: INestApplication, config: CommandServiceConfig): void {
  const express = app as NestExpressApplication;
  // `strict: false`: a trigger payload may be any JSON value, not only an object or array.
  express.useBodyParser<NestExpressBodyParserOptions & { strict: boolean }>('json', { limit: config.COMMAND_SERVICE_BODY_LIMIT, strict: false });
  express.use(bodyParserErrors);
  // A batch of reports checks each report itself (RunsController.reports): one bad report must not refuse the others.
  express.use(jsonBodyGuard({ maxDepth: config.COMMAND_SERVICE_JSON_MAX_DEPTH, skip: (req) => req.path === REPORTS_PATH }));
}
