import { JSONB_PARAM, jsonLiteral, jsonParam, ormOptions, PgTransactions, sqlRunner } from '@flowruns/database';
import { createTestDatabase, waitFor } from '@flowruns/testing';
import { MikroORM } from '@mikro-orm/postgresql';

/** The transactions the command service's write path runs on (`libs/database/src/pg-transactions.ts`). */
describe('PgTransactions (real Postgres)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let orm: MikroORM;
  let pg: PgTransactions;

  beforeAll(async () => {
    db = await createTestDatabase('pgtx');
    orm = await MikroORM.init(ormOptions({ url: db.url, entities: [], poolMax: 2 }));
    pg = new PgTransactions({ url: db.url, max: 2 }, orm.em.getPlatform());
    await orm.em.fork().execute('create table t (id text primary key, n int, doc jsonb, at timestamptz, ats timestamptz[])');
  });

  afterAll(async () => {
    await pg?.close();
    await orm?.close(true);
    await db?.drop();
  });

  const count = async (): Promise<number> => (await orm.em.fork().execute('select count(*)::int as n from t'))[0].n;

  it('commits what the work wrote, with knex-style bindings (arrays expand, objects become JSON)', async () => {
    const at = new Date('2026-01-02T03:04:05.678Z');
    const rows = await pg.transactional(async (sql) => {
      await sql.execute('insert into t (id, n, doc, at) values (?, ?, ?::jsonb, ?), (?, ?, ?::jsonb, ?)', ['a', 1, JSON.stringify({ q: "it's ?" }), at, 'b', 2, '{}', at]);
      return sql.execute<{ id: string }>('select id from t where id in (?) order by id', [['a', 'b', 'z']]);
    });
    expect(rows.map((r) => r.id)).toEqual(['a', 'b']);
    expect(await count()).toBe(2);
  });

  it('answers rows exactly as MikroORM does (timestamps as text, jsonb parsed)', async () => {
    const q = "select id, n, doc, at, array[at, at] as ats from t where id = ?";
    const viaPg = await pg.transactional((sql) => sql.execute(q, ['a']));
    const viaOrm = await sqlRunner(orm.em.fork()).execute(q, ['a']);
    expect(viaPg).toEqual(viaOrm);
    expect(typeof viaPg[0].at).toBe('string');
    expect(viaPg[0].doc).toEqual({ q: "it's ?" });
  });

  it('rolls back when the work throws, and the connection is usable again', async () => {
    await expect(
      pg.transactional(async (sql) => {
        await sql.execute('insert into t (id, n) values (?, ?)', ['c', 3]);
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    // A failing statement aborts the transaction: rolled back too, Postgres' error surfaces as is.
    await expect(pg.transactional((sql) => sql.execute('insert into t (id, n) values (?, ?)', ['a', 9]))).rejects.toMatchObject({ code: '23505' });
    expect(await count()).toBe(2);
    for (let i = 0; i < 4; i++) expect(await pg.transactional((sql) => sql.execute('select 1 as one'))).toEqual([{ one: 1 }]);
  });

  it('survives its connection being killed between two statements: the work fails, the process does not crash, the pool goes on', async () => {
    // Without an 'error' listener on the checked-out client, the lost connection is an unhandled
    // 'error' event: the process (here jest's worker) dies — what a Postgres outage did under load.
    await expect(
      pg.transactional(async (sql) => {
        const [{ pid }] = await sql.execute<{ pid: number }>('select pg_backend_pid() as pid');
        await orm.em.fork().execute('select pg_terminate_backend(?)', [pid]);
        // The termination reaches the client while it is idle in our hands, before the next statement.
        await waitFor(async () => (await orm.em.fork().execute('select 1 from pg_stat_activity where pid = ?', [pid])).length === 0, {
          timeoutMs: 5000,
          what: 'the backend gone',
        });
        await new Promise((r) => setImmediate(r));
        return sql.execute('select 1 as one');
      }),
    ).rejects.toThrow();
    for (let i = 0; i < 3; i++) expect(await pg.transactional((sql) => sql.execute('select 1 as one'))).toEqual([{ one: 1 }]);
  });

  it('holds row locks until the commit (one transaction per unit of work)', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const order: string[] = [];
    const first = pg.transactional(async (sql) => {
      await sql.execute('select id from t where id = ? for update', ['a']);
      order.push('first locked');
      await held;
      await sql.execute('update t set n = n + 1 where id = ?', ['a']);
      order.push('first done');
    });
    await waitFor(() => order.length === 1, { what: 'the first lock' });
    const second = pg.transactional(async (sql) => {
      const [row] = await sql.execute<{ n: number }>('select n from t where id = ? for update', ['a']);
      order.push(`second saw ${row.n}`);
    });
    // The second transaction is waiting on the first one's row lock before the first goes on.
    await waitFor(
      async () =>
        (await orm.em.fork().execute(`select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`)).length === 1,
      { what: 'the second transaction to wait on the lock' },
    );
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(['first locked', 'first done', 'second saw 2']);
  });

  it('carries a JSON document as a literal whatever its text holds (quotes, ?, backslashes, dollar tags, any script)', async () => {
    const doc = {
      quote: "it's \"quoted\" and \\ back\\slashed",
      marks: 'a ? b ?? c \\? d $1 $$ $json$ $json1$ end $json',
      unicode: 'naïve 日本語 🚀 \u2028',
      nested: [{ k: null }, 1.5, true],
    };
    const text = `select x from jsonb_array_elements(${JSONB_PARAM}) as a (x)`;
    const viaPg = await pg.transactional((sql) => sql.execute<{ x: unknown }>(text, [jsonParam([doc, 'and more ? $json$'])]));
    expect(viaPg.map((r) => r.x)).toEqual([doc, 'and more ? $json$']);
    const viaOrm = await sqlRunner(orm.em.fork()).execute<{ x: unknown }>(text, [jsonParam([doc])]);
    expect(viaOrm.map((r) => r.x)).toEqual([doc]);
    // A text holding the first tags gets one it does not hold; one ending where a tag would begin, too.
    expect(jsonLiteral('"x" $json').sql).toBe('$json1$"x" $json$json1$');
    const literal = jsonLiteral('"$json$ and $json1$"');
    expect(literal.sql).toBe('$json2$"$json$ and $json1$"$json2$');
    const [row] = await pg.execute<{ v: unknown }>(`select ${JSONB_PARAM} as v`, [literal]);
    expect(row.v).toBe('$json$ and $json1$');
  });
});
