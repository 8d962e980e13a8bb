import type { INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Logger as PinoNestLogger, LoggerModule } from 'nestjs-pino';
import { Lifecycle } from './health';
import { rootLogger } from './logger';
import { httpMetrics } from './http-metrics';
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
 * nestjs-pino wired to the process's root logger: JSON lines, request ids as fields, probes and
 * /metrics not logged, credential headers masked.
 */
export const loggerModule = () =>
  LoggerModule.forRoot({
    pinoHttp: {
      logger: rootLogger(),
      autoLogging: { ignore: (req) => (req.url ?? '').startsWith('/health') || req.url === '/metrics' },
      serializers: { req: redactRequest },
    },
  });

/**
 * Starts a Nest HTTP app: tracing (a span per request), JSON logs, shutdown hooks (SIGTERM drains: readiness goes false, then
 * modules' `onApplicationShutdown` finish their work), and listening on the given port.
 */
export async function bootstrapHttpApp(
  module: Type<unknown>,
  opts: { name: string; port: number; host?: string; configure?: (app: INestApplication) => void },
): Promise<INestApplication> {
  startTracing(opts.name);
  const log = rootLogger();
  const app = await NestFactory.create(module, { bufferLogs: true, bodyParser: false });
  app.useLogger(app.get(PinoNestLogger));
  app.enableShutdownHooks();
  // First, so that every request is timed (404s and 413s too) and runs inside its span.
  app.use(httpMetrics());
  app.use(httpTracing());
  opts.configure?.(app);
  const lifecycle = app.get(Lifecycle, { strict: false });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      lifecycle.shuttingDown = true;
      log.info({ signal: sig }, 'draining');
    });
  }
  await app.listen(opts.port, opts.host ?? '127.0.0.1');
  log.info({ port: opts.port }, `${opts.name} listening`);
  return app;
}
