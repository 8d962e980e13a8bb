import 'reflect-metadata';
import { bootstrapHttpApp, rootLogger } from '@flowruns/platform';
import { AppModule, config } from './app.module';

bootstrapHttpApp(AppModule, { name: 'flow-worker', port: config.FLOW_WORKER_PORT }).catch((e) => {
  rootLogger('flow-worker').fatal({ err: e }, 'flow-worker failed to start');
  process.exit(1);
});
