import type { OnApplicationShutdown } from '@nestjs/common';
import type { MikroORM } from '@mikro-orm/postgresql';
import { PgTransactions } from '@flowruns/database';
import { componentLogger } from '@flowruns/platform';
import type { GatewayConfig } from './config';

/**
 * The gateway's SQL: every statement it sends (run views, API keys, idempotency keys, the
 * readiness probe) goes to one plain pg pool with MikroORM's own formatting, as the command
 * service's write path and the projector do, instead of an entity-manager fork per call. Measured
 * on the list benchmark it made no difference beyond the noise (bench/notes.md, session 5, "Gateway
 * reads on a plain pg pool"); it is kept for one pool and one path. MikroORM stays for its SQL
 * formatter only (one connection).
 */
export class GatewaySql extends PgTransactions implements OnApplicationShutdown {
  constructor(config: GatewayConfig, orm: MikroORM) {
    const log = componentLogger('database');
    super(
      { url: config.DATABASE_URL, max: config.DATABASE_POOL_MAX, applicationName: 'api-gateway' },
      orm.em.getPlatform(),
      (e) => log.warn({ err: e.message }, 'idle database connection failed'),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }
}
