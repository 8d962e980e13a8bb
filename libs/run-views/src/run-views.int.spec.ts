import { FLOW_RUN_STATUSES, FlowRunSchema, FlowRunWithStepsSchema, type FlowRunStatus } from '@flowruns/contracts';
import { ormOptions, sqlRunner } from '@flowruns/database';
import { ExecutionDataStore } from '@flowruns/execution-data';
import { createTestDatabase, findNodes, indexNodes, planRoot, type PlanNode } from '@flowruns/testing';
import { MikroORM } from '@mikro-orm/postgresql';
import { buildIdScanQuery, buildListQuery, RETENTION_MARK_PROJECTED, RunViews, type ListRunsQuery, type RunSelection } from './index';

/**
 * The query side against a real Postgres: rows are written straight into the read model (the
 * projector's tables) and the execution-data store, then read back through RunViews.
 */

interface SeedRun {
  id: string;
  projectId: string;
  flowId: string;
  status: FlowRunStatus;
  tags: string[];
  failedStepName: string | null;
  archived: boolean;
  /** ISO, microseconds, UTC: the exact value stored. */
  created: string;
}

const P = 'proj_a';
const OTHER = 'proj_b';
const pad = (n: number, w: number) => String(n).padStart(w, '0');
const BASE_MS = Date.parse('2024-03-01T12:00:00.000Z');
/** An instant as Postgres stores it: milliseconds from the epoch plus extra microseconds. */
const at = (ms: number, micros = 0) => `${new Date(ms).toISOString().slice(0, 23)}${pad(micros, 3)}Z`;

/** Deterministic pseudo-random permutation, so id order is unrelated to created order. */
function shuffled<T>(xs: T[], seed = 42): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * 3 000 runs of project A: 1 500 in three milliseconds with 500 identical timestamps (to the
 * microsecond) each; 1 000 in two milliseconds with microseconds that collide in small groups;
 * 500 a second apart. Project B's runs share the same instants and must never show up.
 */
function seedRuns(): SeedRun[] {
  const ids = shuffled(Array.from({ length: 3000 }, (_, g) => `run_${pad(g, 5)}`));
  const runs: SeedRun[] = [];
  for (let g = 0; g < 3000; g++) {
    let created: string;
    if (g < 1500) created = at(BASE_MS + Math.floor(g / 500));
    else if (g < 2500) created = at(BASE_MS + 1000 + Math.floor((g - 1500) / 500), (g * 7919) % 37);
    else created = at(BASE_MS - (g - 2499) * 1000, g % 1000);
    const status = FLOW_RUN_STATUSES[g % FLOW_RUN_STATUSES.length];
    runs.push({
      id: ids[g],
      projectId: P,
      flowId: `flow_${g % 3}`,
      status,
      tags: ['all', g % 2 === 0 ? 'even' : 'odd', ...(g % 5 === 0 ? ['five'] : [])],
      failedStepName: status === 'FAILED' ? `step_${Math.floor(g / 8) % 4}` : null,
      archived: g % 10 === 3,
      created,
    });
  }
  for (let g = 0; g < 300; g++) {
    runs.push({
      id: `runb_${pad(g, 5)}`,
      projectId: OTHER,
      flowId: `flow_${g % 3}`,
      status: 'FAILED',
      tags: ['all', 'five', 'even'],
      failedStepName: 'step_1',
      archived: false,
      created: at(BASE_MS + (g % 5), 0),
    });
  }
  return shuffled(runs, 7);
}

const byListOrder = (a: SeedRun, b: SeedRun) =>
  a.created === b.created ? (a.id < b.id ? 1 : a.id > b.id ? -1 : 0) : a.created < b.created ? 1 : -1;

/** An ISO timestamp with any offset as the UTC microsecond string the seed uses. */
function utc(value: string): string {
  const fraction = /\.(\d+)/.exec(value)?.[1] ?? '';
  return at(Date.parse(value), Number(fraction.slice(3, 6).padEnd(3, '0')));
}

/** The oracle: what a list query must return, computed in JS from the seed. */
function expected(runs: SeedRun[], query: RunSelection): string[] {
  const q = {
    ...query,
    createdAfter: query.createdAfter && utc(query.createdAfter),
    createdBefore: query.createdBefore && utc(query.createdBefore),
  };
  return runs
    .filter(
      (r) =>
        r.projectId === q.projectId &&
        (q.includeArchived || !r.archived) &&
        (q.flowId === undefined || r.flowId === q.flowId) &&
        (!q.status?.length || q.status.includes(r.status)) &&
        (!q.tags?.length || q.tags.every((t) => r.tags.includes(t))) &&
        (q.failedStepName === undefined || r.failedStepName === q.failedStepName) &&
        (q.createdAfter === undefined || r.created >= q.createdAfter) &&
        (q.createdBefore === undefined || r.created <= q.createdBefore) &&
        (!q.flowRunIds?.length || q.flowRunIds.includes(r.id)) &&
        (!q.excludeFlowRunIds?.length || !q.excludeFlowRunIds.includes(r.id)),
    )
    .sort(byListOrder)
    .map((r) => r.id);
}

const pgArray = (xs: readonly string[]) => `{${xs.map((x) => `"${x}"`).join(',')}}`;

describe('RunViews (Postgres)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let orm: MikroORM;
  const runs = seedRuns();
  const views = () => new RunViews(sqlRunner(orm.em.fork()));
  const exec = (sql: string, params: unknown[] = []) => sqlRunner(orm.em.fork()).execute(sql, params);

  beforeAll(async () => {
    db = await createTestDatabase('runviews');
    orm = await MikroORM.init(ormOptions({ url: db.url, entities: [], poolMax: 4 }));
    for (let i = 0; i < runs.length; i += 500) {
      const batch = runs.slice(i, i + 500);
      await exec(
        `insert into run_views (id, project_id, flow_id, flow_version_id, flow_display_name, status, environment,
           triggered_by, tags, steps_count, failed_step_name, attempt, start_time, finish_time, archived_at, created, version)
         values ${batch
           .map(() => `(?, ?, ?, 'ver_1', 'Customer Onboarding', ?, 'PRODUCTION', 'key_1', ?::text[], 3, ?, 1, ?::timestamptz, null, ?::timestamptz, ?::timestamptz, 1)`)
           .join(', ')}`,
        batch.flatMap((r) => [
          r.id,
          r.projectId,
          r.flowId,
          r.status,
          pgArray(r.tags),
          r.failedStepName,
          r.created,
          r.archived ? '2024-04-01T00:00:00Z' : null,
          r.created,
        ]),
      );
    }
    await exec('analyze run_views');
  }, 120_000);

  afterAll(async () => {
    await orm?.close(true);
    await db?.drop();
  });

  /**
   * Follows `next` to the end, then `previous` back to the start, and checks both walks see the
   * same pages, every expected id exactly once, in list order.
   */
  async function walk(q: Omit<ListRunsQuery, 'cursor'>): Promise<string[][]> {
    const forward: { ids: string[]; next: string | null; previous: string | null }[] = [];
    let cursor: string | null = null;
    do {
      const page = await views().listRuns({ ...q, cursor });
      forward.push({ ids: page.data.map((r) => r.id), next: page.next, previous: page.previous });
      cursor = page.next;
      if (forward.length > 5000) throw new Error('no end in sight');
    } while (cursor);

    expect(forward[0].previous).toBeNull();
    expect(forward[forward.length - 1].next).toBeNull();
    for (const p of forward.slice(0, -1)) expect(p.ids).toHaveLength(q.limit);
    const all = forward.flatMap((p) => p.ids);
    expect(new Set(all).size).toBe(all.length);
    expect(all).toEqual(expected(runs, q));

    const backward: string[][] = [forward[forward.length - 1].ids];
    cursor = forward[forward.length - 1].previous;
    while (cursor) {
      const page = await views().listRuns({ ...q, cursor });
      backward.unshift(page.data.map((r) => r.id));
      cursor = page.previous;
      if (backward.length > forward.length) throw new Error('walked back past the first page');
    }
    expect(backward).toEqual(forward.map((p) => p.ids));
    return forward.map((p) => p.ids);
  }

  describe('keyset pagination', () => {
    it.each([100, 37])('walks all 2 700 unarchived runs of a project forward and back with limit %i', async (limit) => {
      const pages = await walk({ projectId: P, limit });
      expect(pages.flat()).toHaveLength(2700);
    });

    it('keeps exact order across runs that share a created microsecond', async () => {
      const ties = runs.filter((r) => r.projectId === P && r.created === at(BASE_MS)).length;
      expect(ties).toBe(500);
      // Page boundaries fall inside the tie groups with limit 37; the walk must still be exact.
      await walk({ projectId: P, limit: 37, includeArchived: true, createdBefore: at(BASE_MS + 1001, 999) });
    });

    it('answers the same page for `next` of a page reached going back', async () => {
      const q = { projectId: P, limit: 50 };
      const p1 = await views().listRuns(q);
      const p2 = await views().listRuns({ ...q, cursor: p1.next });
      const p3 = await views().listRuns({ ...q, cursor: p2.next });
      const back2 = await views().listRuns({ ...q, cursor: p3.previous });
      expect(back2.data).toEqual(p2.data);
      const again3 = await views().listRuns({ ...q, cursor: back2.next });
      expect(again3.data).toEqual(p3.data);
      expect(again3.next).toBe(p3.next);
    });

    it('gives an empty list no cursors, and a short list no next', async () => {
      expect(await views().listRuns({ projectId: 'proj_none', limit: 10 })).toEqual({ data: [], next: null, previous: null });
      const few = await views().listRuns({ projectId: P, limit: 10, flowRunIds: ['run_00001', 'run_00002'], includeArchived: true });
      expect(few.data).toHaveLength(2);
      expect(few.next).toBeNull();
      expect(few.previous).toBeNull();
    });

    it('maps list items to the public FlowRun without step data', async () => {
      const page = await views().listRuns({ projectId: P, limit: 5 });
      for (const run of page.data) {
        expect(FlowRunSchema.strict().parse(run)).toEqual(run);
        expect(run).not.toHaveProperty('steps');
        expect(run.flowVersion).toEqual({ displayName: 'Customer Onboarding' });
        expect(run.created).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      }
    });

    it('reads page N with one index range scan of limit + 1 rows from the boundary, no sort', async () => {
      // Find a cursor deep in the list, then look at what Postgres does for that page.
      let cursor: string | null = null;
      for (let i = 0; i < 10; i++) cursor = (await views().listRuns({ projectId: P, limit: 100, cursor })).next;
      for (const direction of ['forward', 'back'] as const) {
        let c = cursor;
        if (direction === 'back') c = (await views().listRuns({ projectId: P, limit: 100, cursor })).previous;
        const { sql, params } = buildListQuery({ projectId: P, limit: 100, cursor: c });
        const [row] = await exec(`explain (analyze, format json) ${sql}`, params);
        expect(JSON.stringify(row)).not.toContain('"Sort"');
        const scans = listScans(findNodes(planRoot(row), 'Index Scan'));
        expect(scans.map((s) => [s['Index Name'], s['Actual Rows']])).toEqual([['run_views_active_created_idx', 101]]);
        expect(scans[0]['Index Cond']).toContain('ROW(created, id)');
      }
    });

    it('reads page N with archived runs as a range of each set from the boundary, nothing filtered', async () => {
      let cursor: string | null = null;
      for (let i = 0; i < 10; i++) cursor = (await views().listRuns({ projectId: P, limit: 100, includeArchived: true, cursor })).next;
      for (const direction of ['forward', 'back'] as const) {
        let c = cursor;
        if (direction === 'back') c = (await views().listRuns({ projectId: P, limit: 100, includeArchived: true, cursor })).previous;
        const { sql, params } = buildListQuery({ projectId: P, limit: 100, includeArchived: true, cursor: c });
        const [row] = await exec(`explain (analyze, format json) ${sql}`, params);
        expectRangesOfBothSets(row, 'created');
      }
    });
  });

  describe('filters', () => {
    const someIds = runs.filter((r, i) => i % 17 === 0).map((r) => r.id);
    const tieInstant = at(BASE_MS + 1000, 5);
    const cases: [string, Omit<ListRunsQuery, 'limit' | 'cursor' | 'projectId'>][] = [
      ['includeArchived', { includeArchived: true }],
      ['flowId', { flowId: 'flow_1' }],
      ['one status', { status: ['FAILED'] }],
      ['several statuses', { status: ['FAILED', 'TIMEOUT', 'STOPPED'] }],
      ['one tag', { tags: ['five'] }],
      ['all of several tags', { tags: ['five', 'even'] }],
      ['failedStepName', { failedStepName: 'step_2' }],
      ['createdAfter (inclusive, to the microsecond)', { createdAfter: tieInstant }],
      ['createdBefore (inclusive, to the microsecond)', { createdBefore: tieInstant }],
      ['createdAfter with an offset', { createdAfter: '2024-03-01T13:00:00.001+01:00' }],
      ['flowRunIds (other projects’ ids ignored)', { flowRunIds: [...someIds, 'runb_00001', 'nope'] }],
      [
        'everything combined',
        {
          flowId: 'flow_0',
          status: ['FAILED', 'SUCCEEDED', 'RUNNING'],
          tags: ['all', 'even'],
          createdAfter: at(BASE_MS - 400_000),
          createdBefore: at(BASE_MS + 1001, 20),
          includeArchived: true,
        },
      ],
      ['failedStepName with status and ids', { failedStepName: 'step_0', status: ['FAILED'], flowRunIds: someIds }],
    ];

    it.each(cases)('%s', async (_name, filter) => {
      const q = { projectId: P, limit: 37, ...filter };
      const want = expected(runs, q);
      expect(want.length).toBeGreaterThan(0);
      await walk(q);
    });

    it('never shows another project’s runs', async () => {
      const pages = await walk({ projectId: OTHER, limit: 100, tags: ['five'] });
      expect(pages.flat().every((id) => id.startsWith('runb_'))).toBe(true);
      expect(pages.flat()).toHaveLength(300);
    });

    it('takes tags and ids with quotes and commas literally', async () => {
      const none = await views().listRuns({ projectId: P, limit: 10, tags: ['five", "even'], flowRunIds: ["run_00001') or ('1'='1"] });
      expect(none.data).toEqual([]);
    });
  });

  describe('bulk scans (runIdPages)', () => {
    /** Every page of a scan, read to the end. */
    async function scan(q: RunSelection, pageSize: number): Promise<string[][]> {
      const pages: string[][] = [];
      for await (const ids of views().runIdPages(q, pageSize)) pages.push(ids);
      return pages;
    }

    it.each([
      ['a whole project, ties split across pages', { projectId: P, includeArchived: true }, 37],
      ['statuses and a flow, archived left out', { projectId: P, status: ['RUNNING', 'PAUSED'], flowId: 'flow_2' }, 50] as const,
      [
        'excludeFlowRunIds (other projects’ ids harmless)',
        { projectId: P, status: ['RUNNING', 'PAUSED'], excludeFlowRunIds: [...runs.filter((_, i) => i % 3 === 0).map((r) => r.id), 'runb_00001'] },
        41,
      ],
      ['a time window', { projectId: P, createdAfter: at(BASE_MS + 1000, 5), createdBefore: at(BASE_MS + 1001, 20) }, 100],
    ] as [string, RunSelection, number][])('visits every selected run exactly once, in list order: %s', async (_name, q, pageSize) => {
      const pages = await scan(q, pageSize);
      const want = expected(runs, q);
      expect(want.length).toBeGreaterThan(pageSize);
      for (const p of pages.slice(0, -1)) expect(p).toHaveLength(pageSize);
      expect(pages.flat()).toEqual(want);
    });

    it('reads one page only when asked for it (bounded memory)', async () => {
      const statements: string[] = [];
      const spy = {
        execute: <T>(sql: string, params?: unknown[]) => {
          statements.push(sql);
          return orm.em.fork().execute(sql, params) as Promise<T[]>;
        },
      };
      const pages = new RunViews(spy).runIdPages({ projectId: P, includeArchived: true }, 500);
      expect((await pages.next()).value).toHaveLength(500);
      expect((await pages.next()).value).toHaveLength(500);
      expect(statements).toHaveLength(2);
      await pages.return();
      expect(statements.every((s) => /^select \* from \(\(select id, to_char/.test(s) && s.endsWith('limit ?'))).toBe(true);
    });

    it('stops the scan at a page that is not full, and yields nothing for no match', async () => {
      const exact = await scan({ projectId: P, flowRunIds: ['run_00001', 'run_00002', 'run_00003'], includeArchived: true }, 3);
      expect(exact.flat().sort()).toEqual(['run_00001', 'run_00002', 'run_00003']);
      expect(await scan({ projectId: 'proj_none' }, 10)).toEqual([]);
    });

    it('scans with index range scans from the boundary', async () => {
      const boundary = { created: at(BASE_MS + 1), id: 'run_01000' };
      const active = buildIdScanQuery({ projectId: P }, boundary, 500);
      const [row] = await exec(`explain (analyze, format json) ${active.sql}`, active.params);
      const scans = indexNodes(planRoot(row));
      expect(scans.map((s) => s['Index Name'])).toEqual(['run_views_active_created_idx']);
      expect(JSON.stringify(row)).not.toContain('"Sort"');
      const both = buildIdScanQuery({ projectId: P, includeArchived: true }, boundary, 500);
      const [bothRow] = await exec(`explain (analyze, format json) ${both.sql}`, both.params);
      expectRangesOfBothSets(bothRow, 'created');
    });
  });

  describe('archived runs in the way', () => {
    // A project whose newest 2 500 of 3 000 runs are archived: a default list must not read them.
    const A = 'proj_archived';
    const all = Array.from({ length: 3000 }, (_, i) => ({
      id: `runa_${pad(i, 5)}`,
      created: at(BASE_MS + i * 1000),
      status: i % 2 === 0 ? 'FAILED' : 'SUCCEEDED',
      archived: i >= 500,
    }));
    const plan = async (q: ListRunsQuery) => {
      const { sql, params } = buildListQuery(q);
      const [row] = await exec(`explain (analyze, format json) ${sql}`, params);
      const text = JSON.stringify(row);
      const root = planRoot(row);
      return { text, scan: listScans(findNodes(root, 'Index Scan'))[0], scans: listScans(findNodes(root, 'Index Scan')) };
    };

    beforeAll(async () => {
      for (let i = 0; i < all.length; i += 500) {
        const batch = all.slice(i, i + 500);
        await exec(
          `insert into run_views (id, project_id, flow_id, flow_version_id, flow_display_name, status, environment,
             steps_count, attempt, archived_at, created, version)
           values ${batch.map(() => `(?, '${A}', 'flow_1', 'ver_1', 'Flow', ?, 'PRODUCTION', 3, 1, ?::timestamptz, ?::timestamptz, 1)`).join(', ')}`,
          batch.flatMap((r) => [r.id, r.status, r.archived ? '2024-04-01T00:00:00Z' : null, r.created]),
        );
      }
      await exec('analyze run_views');
    });

    it.each([
      ['no filter', {}, 'run_views_active_created_idx', all.filter((r) => !r.archived)],
      ['a status', { status: ['FAILED'] as FlowRunStatus[] }, 'run_views_active_status_created_idx', all.filter((r) => !r.archived && r.status === 'FAILED')],
      ['a flow', { flowId: 'flow_1' }, 'run_views_active_flow_created_idx', all.filter((r) => !r.archived)],
    ])('%s: page 1 reads limit + 1 rows of an index of the unarchived runs only', async (_, filter, index, shown) => {
      const q = { projectId: A, limit: 10, ...filter };
      const page = await views().listRuns(q);
      expect(page.data.map((r) => r.id)).toEqual([...shown].reverse().slice(0, 10).map((r) => r.id));
      const { text, scan } = await plan(q);
      expect(text).toContain(index);
      expect(text).not.toContain('Rows Removed by Filter');
      expect(scan?.['Actual Rows']).toBe(11);
    });

    it.each([
      ['no filter', {}, 'created', all],
      ['a status', { status: ['FAILED'] as FlowRunStatus[] }, 'status_created', all.filter((r) => r.status === 'FAILED')],
      ['a flow', { flowId: 'flow_1' }, 'flow_created', all],
    ])('includeArchived with %s: an index range over each set, merged, nothing filtered', async (_, filter, index, shown) => {
      const q = { projectId: A, limit: 10, includeArchived: true, ...filter };
      expect((await views().listRuns(q)).data.map((r) => r.id)).toEqual([...shown].reverse().slice(0, 10).map((r) => r.id));
      const { text, scans } = await plan(q);
      expect(scans.map((s) => s['Index Name']).sort()).toEqual([`run_views_active_${index}_idx`, `run_views_archived_${index}_idx`]);
      expect(text).not.toContain('Rows Removed by Filter');
      expect(text).not.toContain('"Sort"');
      // The newest runs are archived here: the page comes from the archived set, and the merge
      // reads one row of the other set to know that.
      expect(scans.map((s) => s['Actual Rows']).sort()).toEqual([1, 11]);
    });
  });

  describe('getRun', () => {
    let refs: { trigger: string; fetch: string; transform: string };

    beforeAll(async () => {
      await orm.em.fork().transactional(async (em) => {
        const store = new ExecutionDataStore(sqlRunner(em));
        refs = {
          trigger: await store.put({ runId: 'run_detail', kind: 'trigger', stepName: null, attempt: null, input: undefined, output: { email: 'a@b.c' }, error: undefined }),
          fetch: await store.put({ runId: 'run_detail', kind: 'step', stepName: 'fetch_user', attempt: 1, input: { url: 'http://x' }, output: { id: 7 }, error: undefined }),
          transform: await store.put({ runId: 'run_detail', kind: 'step', stepName: 'transform', attempt: 2, input: { id: 7 }, output: undefined, error: { message: 'boom' } }),
        };
        const run = (id: string, project: string, extra: string) =>
          em.execute(
            `insert into run_views (id, project_id, flow_id, flow_version_id, flow_display_name, status, environment,
               triggered_by, tags, steps_count, attempt, start_time, finish_time, created, version, logs_file_id,
               trigger_data_ref, failed_step_name, pause_request_id, pause_step_name, purged_at)
             values (?, ?, 'flow_x', 'ver_x', 'Detail flow', 'FAILED', 'TESTING', null, '{a}', 3, 2,
               '2024-05-01T10:00:00.123456Z', '2024-05-01T10:00:05Z', '2024-05-01T10:00:00.123456Z', 9, 'file_logs_1',
               ?, 'transform', null, null, ${extra})`,
            [id, project, refs.trigger],
          );
        await run('run_detail', P, 'null');
        await run('run_purged', P, "'2024-06-01T00:00:00Z'");
        await run('run_foreign', OTHER, 'null');
        await em.execute(
          `insert into step_views (run_id, step_name, step_type, status, attempt, position, duration_ms, data_ref) values
             ('run_detail', 'transform', 'transform', 'FAILED', 2, 1, 12, ?),
             ('run_detail', 'fetch_user', 'http', 'SUCCEEDED', 1, 0, 1200, ?),
             ('run_detail', 'notify', 'http', 'RUNNING', 2, 2, null, null),
             ('run_purged', 'fetch_user', 'http', 'SUCCEEDED', 1, 0, 1200, null)`,
          [refs.transform, refs.fetch],
        );
      });
    });

    it('getRuns answers several runs as getRun does, in the order asked, leaving out other projects’ and unknown ids', async () => {
      const many = await views().getRuns(P, ['run_purged', 'run_foreign', 'run_missing', 'run_detail']);
      expect(many).toEqual([await views().getRun(P, 'run_purged'), await views().getRun(P, 'run_detail')]);
      expect(many[1].steps.fetch_user).toMatchObject({ output: { id: 7 } });
      expect(await views().getRuns(P, [])).toEqual([]);
    });

    it('returns the run with the trigger and its steps in position order, payloads included', async () => {
      const run = await views().getRun(P, 'run_detail');
      expect(run).not.toBeNull();
      expect(FlowRunWithStepsSchema.strict().parse(run)).toEqual(run);
      expect(Object.keys(run!.steps)).toEqual(['trigger', 'fetch_user', 'transform', 'notify']);
      expect(run!.steps).toEqual({
        trigger: { type: 'TRIGGER', output: { email: 'a@b.c' } },
        fetch_user: { type: 'http', status: 'SUCCEEDED', input: { url: 'http://x' }, output: { id: 7 }, duration: 1200, attempt: 1 },
        transform: { type: 'transform', status: 'FAILED', input: { id: 7 }, error: { message: 'boom' }, duration: 12, attempt: 2 },
        notify: { type: 'http', status: 'RUNNING', attempt: 2 },
      });
      expect(run).toMatchObject({
        id: 'run_detail',
        projectId: P,
        status: 'FAILED',
        environment: 'TESTING',
        failedStepName: 'transform',
        attempt: 2,
        logsFileId: 'file_logs_1',
        startTime: '2024-05-01T10:00:00.123Z',
        finishTime: '2024-05-01T10:00:05.000Z',
        executionDataPurgedAt: null,
        pause: null,
      });
    });

    it('fetches all payloads of the run in one execution-data query', async () => {
      const statements: string[] = [];
      const spy = {
        execute: <T>(sql: string, params?: unknown[]) => {
          statements.push(sql);
          return orm.em.fork().execute(sql, params) as Promise<T[]>;
        },
      };
      await new RunViews(spy).getRun(P, 'run_detail');
      expect(statements.filter((s) => s.includes('execution_data'))).toHaveLength(1);
      expect(statements).toHaveLength(3);
    });

    it('answers a purged run with its metadata and no steps', async () => {
      const run = await views().getRun(P, 'run_purged');
      expect(run).toMatchObject({ id: 'run_purged', steps: {}, logsFileId: null, executionDataPurgedAt: '2024-06-01T00:00:00.000Z' });
    });

    it('a run whose finish key falls in one of its project’s retention ranges reads purged at the range’s time, list and detail alike; the bounds are exact', async () => {
      const R = 'proj_ranges';
      const finish = '2024-05-02T10:00:00.000Z';
      await orm.em.fork().transactional(async (em) => {
        const insert = (id: string, project: string, finishTime: string | null) =>
          em.execute(
            `insert into run_views (id, project_id, flow_id, flow_version_id, flow_display_name, status, environment,
               steps_count, attempt, start_time, finish_time, created, version, logs_file_id, trigger_data_ref)
             values (?, ?, 'flow_x', 'ver_x', 'F', ?, 'PRODUCTION', 1, 1, '2024-05-01T00:00:00Z', ?, '2024-05-01T00:00:00Z', 3, 'file_1', ?)`,
            [id, project, finishTime ? 'SUCCEEDED' : 'RUNNING', finishTime, refs.trigger],
          );
        // Four runs finished at one instant, told apart by id; one earlier, one later, one running;
        // another project's run at the same instant.
        for (const id of ['rr_a', 'rr_b', 'rr_c', 'rr_d']) await insert(id, R, finish);
        await insert('rr_early', R, '2024-05-01T10:00:00.000Z');
        await insert('rr_late', R, '2024-05-03T10:00:00.000Z');
        await insert('rr_running', R, null);
        await insert('rr_foreign', OTHER, finish);
        // Two ranges: (nothing, (finish, rr_a)] and ((finish, rr_a), (finish, rr_c)].
        await em.execute(
          `insert into run_view_purge_ranges (project_id, through_finished_at, through_run_id, from_finished_at, from_run_id, runs, purged_at) values
             (?, ?, 'rr_a', null, null, 2, '2024-06-01T00:00:00Z'),
             (?, ?, 'rr_c', ?, 'rr_a', 2, '2024-06-02T00:00:00Z')`,
          [R, finish, R, finish, finish],
        );
      });
      const purgedAt = async (id: string, project = R) => (await views().getRun(project, id))?.executionDataPurgedAt;
      expect(await purgedAt('rr_early')).toBe('2024-06-01T00:00:00.000Z');
      expect(await purgedAt('rr_a')).toBe('2024-06-01T00:00:00.000Z');
      expect(await purgedAt('rr_b')).toBe('2024-06-02T00:00:00.000Z');
      expect(await purgedAt('rr_c')).toBe('2024-06-02T00:00:00.000Z');
      for (const id of ['rr_d', 'rr_late', 'rr_running']) expect(await purgedAt(id)).toBeNull();
      expect(await purgedAt('rr_foreign', OTHER)).toBeNull();
      // A covered run's detail has no step data; an uncovered one keeps its trigger payload.
      expect(await views().getRun(R, 'rr_b')).toMatchObject({ steps: {}, logsFileId: null });
      expect(await views().getRun(R, 'rr_d')).toMatchObject({ steps: { trigger: { type: 'TRIGGER', output: { email: 'a@b.c' } } }, logsFileId: 'file_1' });
      const listed = Object.fromEntries((await views().listRuns({ projectId: R, limit: 10 })).data.map((r) => [r.id, r.executionDataPurgedAt]));
      expect(listed).toEqual({
        rr_early: '2024-06-01T00:00:00.000Z',
        rr_a: '2024-06-01T00:00:00.000Z',
        rr_b: '2024-06-02T00:00:00.000Z',
        rr_c: '2024-06-02T00:00:00.000Z',
        rr_d: null,
        rr_late: null,
        rr_running: null,
      });
      // A range whose start is after the key does not claim it (a range lost in between).
      await exec(`delete from run_view_purge_ranges where project_id = ? and through_run_id = 'rr_a'`, [R]);
      expect(await purgedAt('rr_a')).toBeNull();
      expect(await purgedAt('rr_b')).toBe('2024-06-02T00:00:00.000Z');
    });

    it('RETENTION_MARK_PROJECTED: a mark is shown once the range ending exactly at it is in the views', async () => {
      const M = 'proj_mark';
      const finish = '2024-07-01T10:00:00.000Z';
      const projected = async () =>
        (await exec(`select ${RETENTION_MARK_PROJECTED} as shown from retention_marks m where m.project_id = ?`, [M])).map((r) => (r as { shown: boolean }).shown);
      await exec(`insert into retention_marks (project_id, finished_at, run_id) values (?, ?, 'mk_b')`, [M, finish]);
      expect(await projected()).toEqual([false]);
      // A range of another project, one ending before the mark, one at the mark's time but another run: not it.
      await exec(
        `insert into run_view_purge_ranges (project_id, through_finished_at, through_run_id, from_finished_at, from_run_id, runs, purged_at) values
           (?, ?, 'mk_b', null, null, 1, now()), (?, ?, 'mk_b', null, null, 1, now()), (?, ?, 'mk_a', null, null, 1, now())`,
        [OTHER, finish, M, '2024-07-01T09:00:00.000Z', M, finish],
      );
      expect(await projected()).toEqual([false]);
      await exec(
        `insert into run_view_purge_ranges (project_id, through_finished_at, through_run_id, from_finished_at, from_run_id, runs, purged_at)
         values (?, ?, 'mk_b', ?, 'mk_a', 1, now())`,
        [M, finish, finish],
      );
      expect(await projected()).toEqual([true]);
    });

    it('does not see another project’s run, nor an unknown one', async () => {
      expect(await views().getRun(P, 'run_foreign')).toBeNull();
      expect(await views().getRun(OTHER, 'run_detail')).toBeNull();
      expect(await views().getRun(P, 'run_missing')).toBeNull();
      expect(await views().getRun(OTHER, 'run_foreign')).not.toBeNull();
    });
  });
});

/**
 * The scans of a list's plan but the probes of `run_view_purge_ranges` (`RUN_VIEW_PURGED_AT`, one
 * per row read, never more than the rows of the scans above it: checked here).
 */
function listScans(scans: PlanNode[]): PlanNode[] {
  const probes = scans.filter((s) => s['Index Name'] === 'run_view_purge_ranges_pkey');
  const rest = scans.filter((s) => s['Index Name'] !== 'run_view_purge_ranges_pkey');
  const read = rest.reduce((n, s) => n + Number(s['Actual Rows'] ?? 0), 0);
  for (const p of probes) expect(Number(p['Actual Loops'] ?? 0)).toBeLessThanOrEqual(read);
  return rest;
}

/**
 * A selection with archived runs: one range of the unarchived runs' index and one of the archived
 * runs' (Postgres picks a plain or a bitmap read of each by its size), both bounded by the keyset
 * boundary, never a filter along the runs.
 */
function expectRangesOfBothSets(explained: unknown, index: string): void {
  const root = planRoot(explained);
  const scans = listScans(indexNodes(root));
  expect(scans.map((s) => s['Index Name']).sort()).toEqual([`run_views_active_${index}_idx`, `run_views_archived_${index}_idx`]);
  for (const scan of scans) expect(scan['Index Cond']).toContain('ROW(created, id)');
  const text = JSON.stringify(explained);
  expect(text).not.toContain('Seq Scan');
  expect(text).not.toContain('Rows Removed by Filter');
}

