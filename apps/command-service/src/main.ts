import 'reflect-metadata';
import { bootstrapHttpApp, rootLogger } from '@flowruns/platform';
import { AppModule } from './app.module';
import { loadCommandServiceConfig } from './config';
import { configureCommandService } from './configure';

async function main(): Promise<void> {
  const config = loadCommandServiceConfig();
  await bootstrapHttpApp(AppModule, {
    name: 'command-service',
    port: config.COMMAND_SERVICE_PORT,
    host: config.COMMAND_SERVICE_HOST,
    configure: (app) => configureCommandService(app, config),
  });
}

main().catch((e) => {
  rootLogger().fatal({ err: e }, 'command-service failed to start');
  process.exit(1);
});
