import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { bootstrapHttpApp, rootLogger } from '@flowruns/platform';
import { RetentionModule } from './app.module';
import { loadRetentionConfig } from './config';

async function main(): Promise<void> {
  const config = loadRetentionConfig();

  // bootstrapHttpApp takes a module class; this one carries the config read above.
  @Module({ imports: [RetentionModule.forRoot(config)] })
  class RetentionAppModule {}

  await bootstrapHttpApp(RetentionAppModule, { name: 'retention', port: config.RETENTION_PORT, host: config.RETENTION_HOST });
}

main().catch((e) => {
  rootLogger().fatal({ err: e }, 'retention failed to start');
  process.exit(1);
});
