import { Migrator } from '@mikro-orm/migrations';
import { defineConfig, MikroORM, type Options } from '@mikro-orm/postgresql';
import { ensureDatabase } from './database';
import { MIGRATIONS } from './migrations';

type EntityList = NonNullable<Options['entities']>;

/** MikroORM options for one app: its own entities, the shared migrations, a bounded pool. */
export function ormOptions(opts: { url: string; entities: EntityList; poolMax?: number }): Options {
  return defineConfig({
    clientUrl: opts.url,
    entities: opts.entities,
    discovery: { warnWhenNoEntities: false },
    pool: { min: 0, max: opts.poolMax ?? 10 },
    extensions: [Migrator],
    migrations: { migrationsList: MIGRATIONS, tableName: 'mikro_orm_migrations', transactional: true, silent: true },
    allowGlobalContext: false,
    debug: false,
  });
}

/** The explicit migration step: creates the database if missing, then applies pending migrations. */
export async function migrate(url: string): Promise<string[]> {
  await ensureDatabase(url);
  const orm = await MikroORM.init(ormOptions({ url, entities: [], poolMax: 2 }));
  try {
    const applied = await orm.getMigrator().up();
    return applied.map((m) => m.name);
  } finally {
    await orm.close(true);
  }
}

/** Something that runs raw SQL: MikroORM's SqlEntityManager (a fork or a transactional one). */
export interface ExecutesSql {
  execute(sql: string, params?: unknown[]): Promise<unknown>;
}

/** Adapts an entity manager to the libraries' `SqlRunner` port (knex-style `?` bindings). */
export const sqlRunner = (em: ExecutesSql) => ({
  execute: <T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> =>
    em.execute(sql, params) as Promise<T[]>,
});

/** Readiness probe: Postgres answers a trivial query. */
export async function probePostgres(em: ExecutesSql): Promise<void> {
  await em.execute('select 1');
}
