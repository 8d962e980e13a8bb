import { migrate, parseDatabaseUrl, dropTestDatabase } from '@flowruns/database';
import { RawQueryFragment } from '@mikro-orm/core';
import { Pool, type PoolClient } from 'pg';
import { log, uniqueName } from './util';

/**
 * Knex-style `?` bindings (what the libraries' `SqlRunner` port speaks) turned into `$n`, with an
 * array binding expanded into a comma-separated list as knex does — so the list query the gateway
 * runs can be run here verbatim (`buildListQuery`), straight on Postgres.
 */
export function toPositional(sql: string, params: readonly unknown[] = []): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  let i = 0;
  const text = sql.replace(/\?/g, () => {
    const p = params[i++];
    // A literal made to be inlined (`jsonParam`): its SQL goes into the text as the runners put it.
    if (p instanceof RawQueryFragment) return p.sql;
    if (Array.isArray(p)) {
      return p
        .map((v) => {
          values.push(v);
          return `$${values.length}`;
        })
        .join(', ');
    }
    values.push(p);
    return `$${values.length}`;
  });
  if (i !== params.length) throw new Error(`expected ${i} bindings, got ${params.length}`);
  return { text, values };
}

/** One benchmark's database: created fresh, migrated with the committed migrations, dropped after. */
export class BenchDatabase {
  readonly pool: Pool;
  private constructor(readonly url: string) {
    this.pool = new Pool({ connectionString: url, max: 12 });
    // An idle connection's error (the server ending it) is the pool's to drop, not the harness's
    // to die of: without a listener the pool's 'error' event ends the process (it did, once, at
    // the end of a bulk run; what ended the connection was not found).
    this.pool.on('error', (e) => log(`bench database pool: an idle connection failed: ${e.message}`));
  }

  static async create(serverUrl: string, label: string): Promise<BenchDatabase> {
    // The name says "test" so that `dropTestDatabase` agrees to drop it.
    const url = parseDatabaseUrl(serverUrl).serverUrl(uniqueName(`flowruns_test_bench_${label}`).toLowerCase());
    await migrate(url);
    return new BenchDatabase(url);
  }

  async q<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.pool.query(sql, params)).rows as T[];
  }

  async one<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T> {
    const rows = await this.q<T>(sql, params);
    if (rows.length !== 1) throw new Error(`expected one row, got ${rows.length}: ${sql}`);
    return rows[0];
  }

  /** The libraries' SqlRunner port over this pool. */
  runner() {
    return {
      execute: async <T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> => {
        const { text, values } = toPositional(sql, params);
        return (await this.pool.query(text, values)).rows as T[];
      },
    };
  }

  async withClient<T>(work: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      return await work(c);
    } finally {
      c.release();
    }
  }

  async drop(): Promise<void> {
    await this.pool.end().catch(() => undefined);
    await dropTestDatabase(this.url);
  }
}
