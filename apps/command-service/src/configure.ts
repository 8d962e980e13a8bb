import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication, NestExpressBodyParserOptions } from '@nestjs/platform-express';
import { bodyParserErrors, jsonBodyGuard } from '@flowruns/platform';
import type { CommandServiceConfig } from './config';

/** The batch routes, whose bodies' items are checked one by one (RunsController). */
export const BATCH_PATHS: ReadonlySet<string> = new Set(['/internal/reports', '/internal/triggers']);

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
  // A batch checks each item itself (RunsController.batchItem): one bad item must not refuse the others.
  express.use(jsonBodyGuard({ maxDepth: config.COMMAND_SERVICE_JSON_MAX_DEPTH, skip: (req) => BATCH_PATHS.has(req.path) }));
}
