import 'reflect-metadata';
import { bootstrapHttpApp, rootLogger } from '@flowruns/platform';
import { AppModule, config } from './app.module';

bootstrapHttpApp(AppModule, { name: 'retention', port: config.RETENTION_PORT }).catch((e) => {
  rootLogger('retention').fatal({ err: e }, 'retention failed to start');
  process.exit(1);
});
