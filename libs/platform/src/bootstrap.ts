import type { INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Logger as PinoNestLogger, LoggerModule } from 'nestjs-pino';
import { Lifecycle } from './health';
import { rootLogger } from './logger';

/** nestjs-pino wired to the process's root logger (JSON lines, request ids as fields). */
export const loggerModule = () =>
  LoggerModule.forRoot({
    pinoHttp: {
      logger: rootLogger(),
      autoLogging: { ignore: (req) => (req.url ?? '').startsWith('/health') || req.url === '/metrics' },
    },
  });

/**
 * Starts a Nest HTTP app: JSON logs, shutdown hooks (SIGTERM drains: readiness goes false, then
 * modules' `onApplicationShutdown` finish their work), and listening on the given port.
 */
export async function bootstrapHttpApp(
  module: Type<unknown>,
  opts: { name: string; port: number; host?: string; configure?: (app: INestApplication) => void },
): Promise<INestApplication> {
  const log = rootLogger(opts.name);
  const app = await NestFactory.create(module, { bufferLogs: true, bodyParser: false });
  app.useLogger(app.get(PinoNestLogger));
  app.enableShutdownHooks();
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
