/** Raw SQL access with knex-style `?` bindings; MikroORM's `em.execute` satisfies it. */
export interface SqlRunner {
  execute<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /**
   * Called by the append path when this unit of work appended events: the runner's owner wakes
   * the outbox relay once the transaction commits (and not at all if it rolls back). A runner
   * without it gets a `pg_notify` inside the transaction instead.
   */
  outboxAppended?(): void;
}

/** Whether `e` is a Postgres error with one of these SQLSTATEs, as pg (`code`) or MikroORM (`sqlState`) throws it. */
export function hasSqlState(e: unknown, ...states: readonly string[]): boolean {
  const err = e as { code?: unknown; sqlState?: unknown } | null;
  return states.some((s) => err?.code === s || err?.sqlState === s);
}
