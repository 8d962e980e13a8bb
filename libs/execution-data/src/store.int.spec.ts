import { ormOptions, sqlRunner } from '@flowruns/database';
import { createTestDatabase } from '@flowruns/testing';
import { MikroORM } from '@mikro-orm/postgresql';
import { ExecutionDataStore } from './store';

describe('ExecutionDataStore (real Postgres)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let orm: MikroORM;
  const store = () => new ExecutionDataStore(sqlRunner(orm.em.fork()));

  beforeAll(async () => {
    db = await createTestDatabase('exd');
    orm = await MikroORM.init(ormOptions({ url: db.url, entities: [], poolMax: 2 }));
  });
  afterAll(async () => {
    await orm?.close(true);
    await db?.drop();
  });

  it('gives back a JSON null as null and a missing value as undefined', async () => {
    const s = store();
    const nulls = await s.put({ runId: 'r1', kind: 'trigger', stepName: null, attempt: null, input: null, output: null, error: undefined });
    const values = await s.put({ runId: 'r1', kind: 'step', stepName: 'a', attempt: 1, input: 0, output: false, error: '' });
    const got = await s.getMany([nulls, values, 'exd_missing']);
    expect(got.size).toBe(2);
    expect(got.get(nulls)).toMatchObject({ input: null, output: null, error: undefined });
    expect('output' in got.get(nulls)!).toBe(true);
    expect(got.get(values)).toMatchObject({ input: 0, output: false, error: '' });
  });

  it('purges every record of the given runs and counts records and bytes', async () => {
    const s = store();
    await s.put({ runId: 'p1', kind: 'trigger', stepName: null, attempt: null, input: undefined, output: { x: 'abc' }, error: undefined });
    await s.put({ runId: 'p1', kind: 'step', stepName: 'a', attempt: 1, input: 1, output: 2, error: undefined });
    const keep = await s.put({ runId: 'p2', kind: 'trigger', stepName: null, attempt: null, input: undefined, output: 1, error: undefined });
    expect(await s.purgeRuns(['p1', 'nope'])).toEqual({ records: 2, bytes: '{"x":"abc"}'.length + 2 });
    expect(await s.purgeRuns([])).toEqual({ records: 0, bytes: 0 });
    expect((await s.getMany([keep])).size).toBe(1);
  });
});
