import { createHash } from 'node:crypto';
import { BenchDatabase } from './db';
import { SEED_FUNCTIONS, seed } from './seed';
import { benchEnv } from './system';
import { verifySample } from './verify';

// The bulk loader writes in two lanes (the history; the write model and the views), each chunk by
// chunk: what the benchmarks read must still be what the real code would have written.
describe('bulk loader (benchmark harness)', () => {
  let db: BenchDatabase;

  beforeAll(async () => {
    db = await BenchDatabase.create(benchEnv().serverUrl, 'seedspec');
    await db.q(SEED_FUNCTIONS);
  });

  afterAll(async () => {
    await db?.drop();
  });

  const count = async (sql: string, params: unknown[] = []) => Number((await db.one<{ n: string }>(`select (${sql})::text as n`, params)).n);

  it('spells instants as Date.prototype.toISOString does', async () => {
    const instants = [0, 10, 999, 1000, 1_764_000_000_000, 1_764_000_000_010, 1_764_000_059_999, 1_709_164_799_999, 1_709_164_800_000, 1_893_455_999_123];
    const rows = await db.q<{ ms: string; iso: string }>('select ms::text, bench_iso(ms) as iso from unnest($1::bigint[]) ms', [instants]);
    expect(rows.map((r) => r.iso)).toEqual(instants.map((ms) => new Date(ms).toISOString()));
  });

  it('makes UUID v7 ids from the instant and a hash', async () => {
    const cases = [0, 1, 2, 3].map((i) => ({ ms: 1_764_000_000_000 + i * 7, h: createHash('md5').update(`run-${i}`).digest('hex') }));
    const rows = await db.q<{ id: string }>('select bench_uuid7(c.ms, c.h) as id from jsonb_to_recordset($1::jsonb) as c(ms bigint, h text)', [JSON.stringify(cases)]);
    const expected = cases.map(({ ms, h }) => {
      const t = ms.toString(16).padStart(12, '0');
      return `${t.slice(0, 8)}-${t.slice(8)}-7${h.slice(0, 3)}-${'89ab'[parseInt(h.slice(10, 12), 16) % 4]}${h.slice(3, 6)}-${h.slice(6, 18)}`;
    });
    expect(rows.map((r) => r.id)).toEqual(expected);
    for (const { id } of rows) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('loads in chunks what the decider and the projection fold from the loaded history, and settles the tables', async () => {
    const project = 'seed_mixed';
    // 5 chunks per lane; the status mix (no `status`) gives every kind of run.
    const loaded = await seed(db, { projectId: project, from: 0, to: 140, baseMs: Date.now() - 86_400_000, spacingMs: 50, flows: 4, steps: 3, chunk: 30, writeModel: true, events: true, published: true, views: true });
    expect(loaded.runs).toBe(140);
    expect(loaded.events).toBe(await count('select count(*) from run_events e join run_streams s using (run_id) where s.project_id = $1', [project]));
    expect(await count('select count(*) from run_streams where project_id = $1', [project])).toBe(140);
    expect(await count('select count(*) from run_views where project_id = $1', [project])).toBe(140);
    expect(await count('select count(distinct status) from run_views where project_id = $1', [project])).toBe(5);
    // Published: nothing left in the relay's queue.
    expect(await count('select count(*) from run_events_outbox')).toBe(0);

    const ids = (await db.q<{ run_id: string }>('select run_id from run_streams where project_id = $1', [project])).map((r) => r.run_id);
    await expect(verifySample(db, ids)).resolves.toEqual({ runs: 140, events: loaded.events });

    // Settled: every table of the schema vacuumed and analysed (the history in a lane of its own).
    const unsettled = await db.q<{ relname: string }>('select relname from pg_stat_user_tables where last_vacuum is null or last_analyze is null');
    expect(unsettled).toEqual([]);
  });

  it('queues every event for the relay when the history is not marked published, and loads views alone into other tables', async () => {
    const project = 'seed_unpublished';
    const baseMs = Date.now() - 3_600_000;
    const before = await count('select count(*) from run_events');
    const loaded = await seed(db, { projectId: project, from: 1000, to: 1040, baseMs, spacingMs: 50, flows: 2, steps: 2, chunk: 15, status: 'SUCCEEDED', writeModel: false, events: true, published: false, views: false, settle: false });
    expect(loaded.events).toBe(40 * 6);
    expect(await count('select count(*) from run_events')).toBe(before + 240);
    expect(await count('select count(*) from run_events_outbox')).toBe(240);

    await db.q('create table seed_expected_runs (like run_views including all); create table seed_expected_steps (like step_views including all)');
    const views = await seed(db, { projectId: project, from: 1000, to: 1040, baseMs, spacingMs: 50, flows: 2, steps: 2, chunk: 15, status: 'SUCCEEDED', writeModel: false, events: false, published: true, views: true, viewTables: { runs: 'seed_expected_runs', steps: 'seed_expected_steps' }, settle: false });
    expect(views.runs).toBe(40);
    expect(await count('select count(*) from seed_expected_runs where project_id = $1', [project])).toBe(40);
    expect(await count('select count(*) from seed_expected_steps')).toBe(80);
    // The same runs as the history's: every view row's id has its events.
    expect(await count('select count(*) from seed_expected_runs v where not exists (select 1 from run_events e where e.run_id = v.id)')).toBe(0);
  });
});
