import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { bootstrapHttpApp, rootLogger } from '@flowruns/platform';
import { loadFlowWorkerConfig } from './config';
import { WorkerModule } from './worker.module';

async function main(): Promise<void> {
  const config = loadFlowWorkerConfig();

  // bootstrapHttpApp takes a module class; this one carries the config read above.
  @Module({ imports: [WorkerModule.forConfig(config)] })
  class FlowWorkerAppModule {}

  await bootstrapHttpApp(FlowWorkerAppModule, { name: 'flow-worker', port: config.FLOW_WORKER_PORT, host: config.FLOW_WORKER_HOST });
}

main().catch((e) => {
  rootLogger('flow-worker').fatal({ err: e }, 'flow-worker failed to start');
  process.exit(1);
});
