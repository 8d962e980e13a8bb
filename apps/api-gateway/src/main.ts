import 'reflect-metadata';
import { bootstrapHttpApp, rootLogger } from '@flowruns/platform';
import { loadGatewayConfig } from './config';
import { configureGateway } from './configure';
import { gatewayRootModule } from './gateway.module';

async function main(): Promise<void> {
  const config = loadGatewayConfig();
  await bootstrapHttpApp(gatewayRootModule(config), {
    name: 'api-gateway',
    port: config.GATEWAY_PORT,
    host: config.GATEWAY_HOST,
    configure: (app) => configureGateway(app, config),
  });
}

main().catch((e) => {
  rootLogger().fatal({ err: e }, 'api-gateway failed to start');
  process.exit(1);
});
