import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { bootstrapHttpApp, rootLogger } from '@flowruns/platform';
import { loadProjectorConfig } from './config';
import { ProjectorModule } from './projector.module';

async function main(): Promise<void> {
  const config = loadProjectorConfig();

  // bootstrapHttpApp takes a module class; this one carries the config read above.
  @Module({ imports: [ProjectorModule.forConfig(config)] })
  class ProjectorAppModule {}

  await bootstrapHttpApp(ProjectorAppModule, {
    name: 'projector',
    port: config.PROJECTOR_PORT,
    host: config.PROJECTOR_HOST,
  });
}

main().catch((e) => {
  rootLogger().fatal({ err: e }, 'projector failed to start');
  process.exit(1);
});
