import 'reflect-metadata';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { bodyParserErrors, bootstrapHttpApp, rootLogger } from '@flowruns/platform';
import { AppModule } from './app.module';
import { loadCommandServiceConfig } from './config';

async function main(): Promise<void> {
  const config = loadCommandServiceConfig();
  await bootstrapHttpApp(AppModule, {
    name: 'command-service',
    port: config.COMMAND_SERVICE_PORT,
    host: config.COMMAND_SERVICE_HOST,
    configure: (app) => {
      (app as NestExpressApplication).useBodyParser('json', { limit: config.COMMAND_SERVICE_BODY_LIMIT, strict: false } as never);
      (app as NestExpressApplication).use(bodyParserErrors);
    },
  });
}

main().catch((e) => {
  rootLogger().fatal({ err: e }, 'command-service failed to start');
  process.exit(1);
});
