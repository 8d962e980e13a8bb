import { Migrator } from '@mikro-orm/migrations';
import { defineConfig, MikroORM, type Options } from '@mikro-orm/postgresql';
import { ensureDatabase } from './database';
import { MIGRATIONS } from './migrations';

type EntityList = NonNullable<Options['entities']>;

/** Where MikroORM records the migrations it applied (by name). */
export const MIGRATIONS_TABLE = 'mikro_orm_migrations';

/** MikroORM options for one app: its own entities, the shared migrations, a bounded pool. */
export function ormOptions(opts: { url: string; entities: EntityList; poolMax?: number }): Options {
  return defineConfig({
    clientUrl: opts.url,
    entities: opts.entities,
    discovery: { warnWhenNoEntities: false },
    pool: { min: 0, max: opts.poolMax ?? 10 },
    extensions: [Migrator],
    migrations: { migrationsList: MIGRATIONS, tableName: MIGRATIONS_TABLE, transactional: true, silent: true },
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

/**
 * The migrations this build knows that the database has not applied, in order (all of them when
 * nothing was ever migrated). Migrations the database has and this build does not (a newer build
 * migrated it) are not pending: they only add.
 */
export async function pendingMigrations(em: ExecutesSql): Promise<string[]> {
  const [{ present }] = (await em.execute(`select to_regclass('${MIGRATIONS_TABLE}') is not null as present`)) as [{ present: boolean }];
  const applied = present ? ((await em.execute(`select name from ${MIGRATIONS_TABLE}`)) as Array<{ name: string }>) : [];
  const done = new Set(applied.map((r) => r.name));
  return MIGRATIONS.map((m) => m.name).filter((name) => !done.has(name));
}

/**
 * Readiness probe: Postgres answers, and holds every migration this build was written against. A
 * process started before `db:migrate` ran (a deploy in the wrong order) stays not ready, naming
 * what is missing, instead of failing on a missing column at its first write.
 */
export async function probePostgres(em: ExecutesSql): Promise<{ migrations: number }> {
  const pending = await pendingMigrations(em);
  if (pending.length) throw new Error(`migrations not applied: ${pending.join(', ')} (run db:migrate)`);
  return { migrations: MIGRATIONS.length };
}
