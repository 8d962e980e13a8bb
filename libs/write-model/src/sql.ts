/** Raw SQL access with knex-style `?` bindings; MikroORM's `em.execute` satisfies it. */
export interface SqlRunner {
  execute<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}
