import type { INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Logger as PinoNestLogger, LoggerModule } from 'nestjs-pino';
import { loadConfig } from './config';
import { Lifecycle } from './health';
import { rootLogger } from './logger';
import { httpMetrics } from './http-metrics';
import { exitOnSignals, HttpDrain, shutdownHttpApp, ShutdownConfigSchema, type ShutdownConfig } from './shutdown';
import { httpTracing, startTracing } from './tracing';

/** Request headers that carry credentials: never written to a log. */
const SECRET_HEADERS = ['authorization', 'cookie', 'x-internal-token', 'x-api-key'];

/** A serialized request with its credential headers masked (a copy: the live headers stay intact). */
export function redactRequest<T extends { headers?: Record<string, unknown> }>(req: T): T {
  if (!req?.headers) return req;
  const headers = { ...req.headers };
  for (const name of SECRET_HEADERS) if (headers[name] !== undefined) headers[name] = '[redacted]';
  return { ...req, headers };
}

/**
 * The run a request is about, as a log field: the route's `:runId` (the command service's
 * `/internal/runs/:runId/...`), or its `:id` on a `flow-runs/:id` route (the gateway's public API).
 * Read when the response is logged, once the router has filled in the params.
 */
export function requestLogFields(req: { params?: Record<string, unknown>; route?: { path?: unknown } }): { runId?: string } {
  const params = req.params ?? {};
  if (typeof params.runId === 'string') return { runId: params.runId };
  const route = req.route?.path;
  if (typeof params.id === 'string' && typeof route === 'string' && route.includes('flow-runs/:id')) return { runId: params.id };
  return {};
}

/**
 * nestjs-pino wired to the process's root logger: JSON lines, request ids, the trace (the logger's
 * mixin) and the run (`requestLogFields`) as fields, probes and /metrics not logged, credential
 * headers masked.
 *
 * The access log's middleware is mounted only when its lines are written (`LOG_LEVEL` info or
 * lower): it gives every request a child logger with the request serialised at once, and an
 * AsyncLocalStorage scope, whether or not anything is logged — about 11 KB of garbage per request
 * on the gateway (bench/notes.md, session 19). Nothing here reads `req.log`; Nest's own lines go
 * through the root logger either way.
 */
export const loggerModule = () =>
  LoggerModule.forRoot({
    forRoutes: rootLogger().isLevelEnabled('info') ? undefined : [],
    pinoHttp: {
      logger: rootLogger(),
      autoLogging: { ignore: (req) => (req.url ?? '').startsWith('/health') || req.url === '/metrics' },
      serializers: { req: redactRequest },
      // Not `customProps`: at response time pino-http 11 calls its own pino's symbol on our pino 9
      // logger, which throws. The logged object takes the fields just as well.
      customSuccessObject: (req, _res, logged) => ({ ...logged, ...requestLogFields(req as Parameters<typeof requestLogFields>[0]) }),
      customErrorObject: (req, _res, _err, logged) => ({ ...logged, ...requestLogFields(req as Parameters<typeof requestLogFields>[0]) }),
    },
  });

/**
 * Starts a Nest HTTP app: tracing (a span per request), JSON logs, and listening on the given port.
 * On SIGTERM/SIGINT it drains and exits by itself (`shutdown.ts`): readiness goes false, the server
 * stops accepting and closes its keep-alive connections as their requests finish, after
 * `SHUTDOWN_DRAIN_TIMEOUT_MS` it closes the rest, then the modules' shutdown hooks finish their work
 * and the process exits — within `SHUTDOWN_TIMEOUT_MS` in any case.
 */
/**
 * What every app's HTTP server does first: tracing started, every request timed (404s and 413s
 * too) and run inside its span. bootstrapHttpApp calls it; specs that boot an app in-process call
 * it the same way.
 */
export function observeHttp(app: INestApplication, service: string): void {
  startTracing(service);
  app.use(httpMetrics());
  app.use(httpTracing());
}

export async function bootstrapHttpApp(
  module: Type<unknown>,
  opts: {
    name: string;
    port: number;
    host?: string;
    configure?: (app: INestApplication) => void;
    /** Default: read from the environment (`ShutdownConfigSchema`). */
    shutdown?: ShutdownConfig;
  },
): Promise<INestApplication> {
  const log = rootLogger();
  const shutdown = opts.shutdown ?? loadConfig(ShutdownConfigSchema);
  const app = await NestFactory.create(module, { bufferLogs: true, bodyParser: false });
  app.useLogger(app.get(PinoNestLogger));
  observeHttp(app, opts.name);
  opts.configure?.(app);
  // Not Nest's enableShutdownHooks: it closes the HTTP server only after the modules' destroy
  // hooks, and waits on keep-alive connections without a deadline.
  const drain = new HttpDrain(app.getHttpServer());
  const lifecycle = app.get(Lifecycle, { strict: false });
  exitOnSignals(
    () =>
      shutdownHttpApp(app, drain, {
        drainTimeoutMs: shutdown.SHUTDOWN_DRAIN_TIMEOUT_MS,
        log,
        onDraining: () => (lifecycle.shuttingDown = true),
      }),
    { timeoutMs: shutdown.SHUTDOWN_TIMEOUT_MS, log },
  );
  await app.listen(opts.port, opts.host ?? '127.0.0.1');
  log.info({ port: opts.port }, `${opts.name} listening`);
  return app;
}
