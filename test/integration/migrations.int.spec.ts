import { dropTestDatabase, ensureDatabase, MIGRATIONS, ormOptions, parseDatabaseUrl, pendingMigrations, probePostgres } from '@flowruns/database';
import { testEnv, uniqueName } from '@flowruns/testing';
import { MikroORM } from '@mikro-orm/postgresql';

/**
 * An empty database of its own (created, never migrated) for the describe block; dropped after it.
 * `orm()` once the block's `beforeAll` ran; `sql` runs a statement on a fresh entity manager.
 */
function unmigratedDatabase(label: string): { orm: () => MikroORM; sql: <T>(text: string, params?: unknown[]) => Promise<T[]> } {
  const url = parseDatabaseUrl(testEnv().databaseUrl).serverUrl(uniqueName(label).toLowerCase());
  let orm: MikroORM | undefined;
  beforeAll(async () => {
    await ensureDatabase(url);
    orm = await MikroORM.init(ormOptions({ url, entities: [], poolMax: 1 }));
  });
  afterAll(async () => {
    await orm?.close(true);
    await dropTestDatabase(url);
  });
  const opened = (): MikroORM => {
    if (!orm) throw new Error('the database is opened in beforeAll');
    return orm;
  };
  return { orm: opened, sql: <T>(text: string, params: unknown[] = []) => opened().em.fork().execute<T[]>(text, params) };
}

/**
 * Migrations that change a table holding rows: what happens to the rows already there, and that
 * `down` undoes `up` (a rollback of the release must leave a schema the old code works with).
 */
describe('Migration20261129150000StallReason', () => {
  const { orm, sql } = unmigratedDatabase('flowruns_test_migrations');

  const columns = async () =>
    (await sql<{ column_name: string }>(`select column_name from information_schema.columns where table_name = 'projection_stalls' order by ordinal_position`)).map(
      (c) => c.column_name,
    );
  const rows = async () => (await sql<{ row: unknown }>(`select to_jsonb(s) - 'detected_at' as row from projection_stalls s order by run_id`)).map((r) => r.row);
  const old = { run_id: 'run-old', expected_seq: 3, received_seq: 5, event_id: 'evt-old' };

  it('adds reason and event_type, null for a stall recorded before it; down removes them and keeps the rows', async () => {
    await orm().getMigrator().up({ to: 'Migration20261129120000Fillfactor' });
    await sql(`insert into projection_stalls (run_id, expected_seq, received_seq, event_id) values (?, ?, ?, ?)`, Object.values(old));

    await orm().getMigrator().up();
    expect(await columns()).toEqual(['run_id', 'expected_seq', 'received_seq', 'event_id', 'detected_at', 'reason', 'event_type']);
    const added = { run_id: 'run-new', expected_seq: 1, received_seq: 1, event_id: 'evt-new', event_type: 'flowrun.step.started.v1', reason: 'not-created' };
    await sql(`insert into projection_stalls (run_id, expected_seq, received_seq, event_id, event_type, reason) values (?, ?, ?, ?, ?, ?)`, Object.values(added));
    expect(await rows()).toEqual([added, { ...old, event_type: null, reason: null }]);

    await orm().getMigrator().down({ to: 'Migration20261129150000StallReason' });
    expect(await columns()).toEqual(['run_id', 'expected_seq', 'received_seq', 'event_id', 'detected_at']);
    expect(await rows()).toEqual([{ run_id: 'run-new', expected_seq: 1, received_seq: 1, event_id: 'evt-new' }, old]);

    // And up again, as a release rolled forward after its rollback would.
    await orm().getMigrator().up();
    expect(await columns()).toContain('reason');
  });
});

describe('Migration20261129170000OutboxQueue', () => {
  const { orm, sql } = unmigratedDatabase('flowruns_test_outbox_queue');

  const event = (id: string, seq: number) => [id, 'run-1', seq, 'flowrun.step.started.v1', JSON.stringify({ id })];
  const queued = async () => (await sql<{ event_id: string }>(`select e.event_id from run_events_outbox o join run_events e using (position) order by o.position`)).map((r) => r.event_id);
  const published = async () =>
    (await sql<{ event_id: string; published: boolean }>(`select event_id, published_at is not null as published from run_events order by position`)).map((r) => [r.event_id, r.published]);

  it('queues the unpublished events, then every event any insert commits; down marks what left the queue as published', async () => {
    await orm().getMigrator().up({ to: 'Migration20261129150000StallReason' });
    await sql(`insert into run_events (event_id, run_id, seq, type, envelope, published_at) values (?, ?, ?, ?, ?, now())`, event('evt-sent', 1));
    await sql(`insert into run_events (event_id, run_id, seq, type, envelope) values (?, ?, ?, ?, ?), (?, ?, ?, ?, ?)`, [...event('evt-a', 2), ...event('evt-b', 3)]);

    await orm().getMigrator().up();
    expect(await queued()).toEqual(['evt-a', 'evt-b']);
    const columns = await sql<{ column_name: string }>(`select column_name from information_schema.columns where table_name = 'run_events'`);
    expect(columns.map((c) => c.column_name)).not.toContain('published_at');

    // An insert inside a data-modifying CTE (as the append writes) is queued in its transaction;
    // one that rolls back is not.
    await sql(`with x as (insert into run_events (event_id, run_id, seq, type, envelope) values (?, ?, ?, ?, ?) returning position) select count(*) from x`, event('evt-c', 4));
    await expect(
      orm().em.fork().transactional(async (em) => {
        await em.execute(`insert into run_events (event_id, run_id, seq, type, envelope) values (?, ?, ?, ?, ?)`, event('evt-rolled-back', 5));
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await queued()).toEqual(['evt-a', 'evt-b', 'evt-c']);

    // The relay publishes evt-a and takes it off the queue; then the release is rolled back.
    await sql(`delete from run_events_outbox where position = (select position from run_events where event_id = 'evt-a')`);
    await orm().getMigrator().down({ to: 'Migration20261129170000OutboxQueue' });
    expect(await published()).toEqual([['evt-sent', true], ['evt-a', true], ['evt-b', false], ['evt-c', false]]);
    const left = await sql<{ n: number }>(`select count(*)::int as n from pg_class where relname in ('run_events_outbox', 'run_events_unpublished_idx')`);
    expect(left[0].n).toBe(1);

    // Up again: the queue holds what the column said was not published.
    await orm().getMigrator().up();
    expect(await queued()).toEqual(['evt-b', 'evt-c']);
  });
});

describe('Migration20261129210000ActiveListIndexes', () => {
  const { orm, sql } = unmigratedDatabase('flowruns_test_active_indexes');
  const indexes = async () =>
    (await sql<{ indexname: string; indexdef: string }>(`select indexname, indexdef from pg_indexes where tablename = 'run_views' and indexname like '%created_idx' order by indexname`)).map(
      (i) => `${i.indexname}${/WHERE \(archived_at IS NULL\)/.test(i.indexdef) ? ' (unarchived)' : ''}`,
    );

  it('adds the list indexes over the unarchived runs only, beside the whole ones; down removes them', async () => {
    await orm().getMigrator().up({ to: 'Migration20261129170000OutboxQueue' });
    const before = ['run_views_project_created_idx', 'run_views_project_flow_created_idx', 'run_views_project_status_created_idx'];
    expect(await indexes()).toEqual(before);

    await orm().getMigrator().up({ to: 'Migration20261129210000ActiveListIndexes' });
    expect(await indexes()).toEqual([
      'run_views_active_created_idx (unarchived)',
      'run_views_active_flow_created_idx (unarchived)',
      'run_views_active_status_created_idx (unarchived)',
      ...before,
    ]);

    await orm().getMigrator().down({ to: 'Migration20261129210000ActiveListIndexes' });
    expect(await indexes()).toEqual(before);
    await orm().getMigrator().up({ to: 'Migration20261129210000ActiveListIndexes' });
    expect(await indexes()).toHaveLength(6);
  });
});

describe('Migration20261130000000ArchivedListIndexes', () => {
  const { orm, sql } = unmigratedDatabase('flowruns_test_archived_indexes');
  const indexes = async () =>
    (await sql<{ indexname: string; indexdef: string }>(`select indexname, indexdef from pg_indexes where tablename = 'run_views' and indexname like '%created_idx' order by indexname`)).map(
      (i) => `${i.indexname} ${/WHERE \(archived_at IS NULL\)/.test(i.indexdef) ? '(unarchived)' : /WHERE \(archived_at IS NOT NULL\)/.test(i.indexdef) ? '(archived)' : '(whole)'}`,
    );
  const active = ['run_views_active_created_idx (unarchived)', 'run_views_active_flow_created_idx (unarchived)', 'run_views_active_status_created_idx (unarchived)'];
  const whole = ['run_views_project_created_idx (whole)', 'run_views_project_flow_created_idx (whole)', 'run_views_project_status_created_idx (whole)'];

  it('replaces the whole list indexes by ones over the archived runs (one built ahead by an operator is kept); down puts the whole ones back', async () => {
    await orm().getMigrator().up({ to: 'Migration20261129210000ActiveListIndexes' });
    expect(await indexes()).toEqual([...active, ...whole]);

    // As an operator would build it first on a large table (outside a transaction, without blocking writes).
    await sql(`create index concurrently run_views_archived_created_idx on run_views (project_id, created desc, id desc) where archived_at is not null`);
    await orm().getMigrator().up();
    expect(await indexes()).toEqual([
      ...active,
      'run_views_archived_created_idx (archived)',
      'run_views_archived_flow_created_idx (archived)',
      'run_views_archived_status_created_idx (archived)',
    ]);

    await orm().getMigrator().down({ to: 'Migration20261130000000ArchivedListIndexes' });
    expect(await indexes()).toEqual([...active, ...whole]);
    await orm().getMigrator().up();
    expect(await indexes()).toHaveLength(6);
  });
});

describe('Migration20261130120000RetentionKeyset', () => {
  const { orm, sql } = unmigratedDatabase('flowruns_test_retention_keyset');
  const indexes = async () =>
    (await sql<{ indexdef: string }>(`select indexdef from pg_indexes where tablename = 'run_streams' and indexname like '%retention%' order by indexname`)).map((i) =>
      i.indexdef.replace(/^CREATE INDEX (\S+) ON public\.run_streams USING btree /, '$1 '),
    );
  const predicate = 'WHERE ((finished_at IS NOT NULL) AND (purged_at IS NULL))';

  it('gives the retention candidates\' index the run id as second key (one built ahead is kept); down puts the old one back', async () => {
    await orm().getMigrator().up({ to: 'Migration20261130000000ArchivedListIndexes' });
    expect(await indexes()).toEqual([`run_streams_retention_idx (finished_at) ${predicate}`]);

    await sql(`create index concurrently run_streams_retention_key_idx on run_streams (finished_at, run_id) where finished_at is not null and purged_at is null`);
    await orm().getMigrator().up({ to: 'Migration20261130120000RetentionKeyset' });
    expect(await indexes()).toEqual([`run_streams_retention_key_idx (finished_at, run_id) ${predicate}`]);

    await orm().getMigrator().down({ to: 'Migration20261130000000ArchivedListIndexes' });
    expect(await indexes()).toEqual([`run_streams_retention_idx (finished_at) ${predicate}`]);
    await orm().getMigrator().up({ to: 'Migration20261130120000RetentionKeyset' });
    expect(await indexes()).toEqual([`run_streams_retention_key_idx (finished_at, run_id) ${predicate}`]);
  });
});

describe('Migration20261202000000RetentionRanges', () => {
  const { orm, sql } = unmigratedDatabase('flowruns_test_retention_ranges');
  const indexes = async () =>
    (await sql<{ indexdef: string }>(`select indexdef from pg_indexes where tablename = 'run_streams' and indexname like '%retention%' order by indexname`)).map((i) =>
      i.indexdef.replace(/^CREATE INDEX (\S+) ON public\.run_streams USING btree /, '$1 '),
    );
  const tables = async () =>
    (await sql<{ t: string }>(`select table_name as t from information_schema.tables where table_name in ('retention_marks', 'run_view_purge_ranges') order by 1`)).map((r) => r.t);

  it('adds the marks (write model) and the ranges (read model); the candidates\' index becomes per project; down puts the keyset index back', async () => {
    await orm().getMigrator().up({ to: 'Migration20261201000000StreamFillfactor' });
    await orm().getMigrator().up();
    expect(await tables()).toEqual(['retention_marks', 'run_view_purge_ranges']);
    expect(await indexes()).toEqual(['run_streams_retention_project_idx (project_id, finished_at, run_id) WHERE (finished_at IS NOT NULL)']);
    await orm().getMigrator().down({ to: 'Migration20261201000000StreamFillfactor' });
    expect(await tables()).toEqual([]);
    expect(await indexes()).toEqual(['run_streams_retention_key_idx (finished_at, run_id) WHERE ((finished_at IS NOT NULL) AND (purged_at IS NULL))']);
  });
});

describe('Migration20261201000000StreamFillfactor', () => {
  const { orm, sql } = unmigratedDatabase('flowruns_test_stream_fillfactor');
  const options = async () => (await sql<{ options: string[] | null }>(`select reloptions as options from pg_class where relname = 'run_streams'`))[0].options;

  it('leaves half of each new page of run_streams free; down puts the default back', async () => {
    await orm().getMigrator().up({ to: 'Migration20261130120000RetentionKeyset' });
    expect(await options()).toBeNull();
    await orm().getMigrator().up({ to: 'Migration20261201000000StreamFillfactor' });
    expect(await options()).toEqual(['fillfactor=50']);
    await orm().getMigrator().down({ to: 'Migration20261130120000RetentionKeyset' });
    expect(await options()).toBeNull();
  });
});

describe('Migration20261204000000StreamProjectKey', () => {
  const { orm, sql } = unmigratedDatabase('flowruns_test_stream_project_key');
  const indexes = async () =>
    (await sql<{ indexdef: string }>(`select indexdef from pg_indexes where tablename = 'run_streams' and indexname like 'run_streams_project_%' order by indexname`)).map((i) =>
      i.indexdef.replace(/^CREATE INDEX (\S+) ON public\.run_streams USING btree /, '$1 '),
    );
  const before = ['run_streams_project_created_idx (project_id, created_at)', 'run_streams_project_run_idx (project_id, run_id)'];

  it('puts one (project_id, created_at, run_id) index in place of the two project indexes (one built ahead is kept); down puts them back', async () => {
    await orm().getMigrator().up({ to: 'Migration20261203000000EventIdNotIndexed' });
    expect(await indexes()).toEqual(before);
    await sql(`create index concurrently run_streams_project_key_idx on run_streams (project_id, created_at, run_id)`);
    await orm().getMigrator().up({ to: 'Migration20261204000000StreamProjectKey' });
    expect(await indexes()).toEqual(['run_streams_project_key_idx (project_id, created_at, run_id)']);
    await orm().getMigrator().down({ to: 'Migration20261203000000EventIdNotIndexed' });
    expect(await indexes()).toEqual(before);
    await orm().getMigrator().up();
    expect(await indexes()).toEqual(['run_streams_project_key_idx (project_id, created_at, run_id)']);
  });
});

/** What readiness says about a database that is behind this build (a deploy in the wrong order). */
describe('pendingMigrations and the postgres readiness probe', () => {
  const { orm, sql } = unmigratedDatabase('flowruns_test_pending');
  const names = MIGRATIONS.map((m) => m.name);

  it('names every migration of a database never migrated, and the probe is down', async () => {
    expect(await pendingMigrations(orm().em.fork())).toEqual(names);
    await expect(probePostgres(orm().em.fork())).rejects.toThrow(`migrations not applied: ${names.join(', ')} (run db:migrate)`);
  });

  it('names only the migrations not applied yet, in order', async () => {
    await orm().getMigrator().up({ to: names[names.length - 3] });
    expect(await pendingMigrations(orm().em.fork())).toEqual(names.slice(-2));
    await expect(probePostgres(orm().em.fork())).rejects.toThrow(names[names.length - 1]);
  });

  it('is up, with the count, once every migration is applied; a migration only a newer build knows is not pending', async () => {
    await orm().getMigrator().up();
    expect(await pendingMigrations(orm().em.fork())).toEqual([]);
    await expect(probePostgres(orm().em.fork())).resolves.toEqual({ migrations: names.length });
    await sql(`insert into mikro_orm_migrations (name) values ('Migration29991231000000FromTheFuture')`);
    expect(await pendingMigrations(orm().em.fork())).toEqual([]);
  });
});
