import type { FlowRun, FlowRunStatus } from '@flowruns/contracts';
import { FLOW_RUN_STATUSES } from '@flowruns/contracts';
import { Client } from 'pg';
import { assertContractAnswer, newApiKey, httpRequest, type HttpAnswer } from './client';
import { startSystem } from './harness';

/**
 * Keyset pagination over HTTP at volume: 3 000 runs of one project written straight into the
 * projector's read model with only six distinct `created` values (hundreds of runs per instant,
 * three instants inside one millisecond), plus another project's runs at the same instants and
 * archived runs. Walking `next` to the end and `previous` back to the start must visit every
 * selected run exactly once, newest first with `id` breaking ties, and see the same pages both
 * ways — alone and combined with every list filter. The expected sets are computed here from the
 * inserted rows, not read back from the service.
 */

const P = 'proj_pages';
const OTHER = 'proj_pages_other';

interface Seed {
  id: string;
  projectId: string;
  flowId: string;
  status: FlowRunStatus;
  tags: string[];
  failedStepName: string | null;
  archived: boolean;
  /** Exactly as stored: ISO UTC with microseconds. */
  created: string;
}

/** Six instants; the first three share one millisecond and differ in microseconds. */
const INSTANTS = [
  '2024-03-01T12:00:00.000000Z',
  '2024-03-01T12:00:00.000001Z',
  '2024-03-01T12:00:00.000999Z',
  '2024-03-01T12:00:00.001000Z',
  '2024-03-01T12:00:00.001500Z',
  '2024-03-01T12:00:01.000000Z',
] as const;

/** Deterministic pseudo-random 32-bit numbers (mulberry32), so a failure replays the same data. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** How many of every 3 000 runs fall on each instant: skewed, the largest group over 1 000. */
const WEIGHTS = [1100, 300, 600, 200, 500, 300];
function instantOf(x: number): string {
  let acc = 0;
  for (let i = 0; i < WEIGHTS.length; i++) {
    acc += WEIGHTS[i];
    if (x < acc) return INSTANTS[i];
  }
  return INSTANTS[INSTANTS.length - 1];
}

/**
 * Ids are fixed-length lowercase hex after a common prefix, so Postgres's collation and a JS
 * string compare order them the same way, and their order has nothing to do with `created`.
 */
function seedRuns(): Seed[] {
  const rnd = prng(20240301);
  const used = new Set<string>();
  const newId = (prefix: string) => {
    for (;;) {
      const id = `${prefix}${rnd().toString(16).padStart(8, '0')}`;
      if (!used.has(id)) {
        used.add(id);
        return id;
      }
    }
  };
  const runs: Seed[] = [];
  for (let g = 0; g < 3000; g++) {
    const status = FLOW_RUN_STATUSES[rnd() % FLOW_RUN_STATUSES.length];
    runs.push({
      id: newId('run_'),
      projectId: P,
      flowId: `flow_${g % 3}`,
      status,
      tags: ['all', g % 2 === 0 ? 'even' : 'odd', ...(g % 5 === 0 ? ['five'] : [])],
      failedStepName: status === 'FAILED' ? `step_${rnd() % 3}` : null,
      archived: g % 10 === 3,
      created: instantOf(rnd() % 3000),
    });
  }
  for (let g = 0; g < 300; g++) {
    runs.push({
      id: newId('run_'),
      projectId: OTHER,
      flowId: `flow_${g % 3}`,
      status: 'FAILED',
      tags: ['all', 'even', 'five'],
      failedStepName: 'step_1',
      archived: false,
      created: INSTANTS[g % INSTANTS.length],
    });
  }
  return runs;
}

/** List order: `created` newest first, then `id` descending. */
const listOrder = (a: Seed, b: Seed) => (a.created !== b.created ? (a.created < b.created ? 1 : -1) : a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

interface Filters {
  flowId?: string;
  status?: FlowRunStatus[];
  tags?: string[];
  failedStepName?: string;
  /** ISO with microseconds and Z, so it compares as a string with the seed's `created`. */
  createdAfter?: string;
  createdBefore?: string;
  flowRunIds?: string[];
  includeArchived?: boolean;
}

/** The oracle: which of the seed's runs a list with these filters must return, in order. */
function expectedIds(runs: readonly Seed[], f: Filters): string[] {
  return runs
    .filter(
      (r) =>
        r.projectId === P &&
        (f.includeArchived || !r.archived) &&
        (f.flowId === undefined || r.flowId === f.flowId) &&
        (!f.status || f.status.includes(r.status)) &&
        (!f.tags || f.tags.every((t) => r.tags.includes(t))) &&
        (f.failedStepName === undefined || r.failedStepName === f.failedStepName) &&
        (f.createdAfter === undefined || r.created >= f.createdAfter) &&
        (f.createdBefore === undefined || r.created <= f.createdBefore) &&
        (!f.flowRunIds || f.flowRunIds.includes(r.id)),
    )
    .sort(listOrder)
    .map((r) => r.id);
}

function queryOf(f: Filters, limit: number): string {
  const q = new URLSearchParams({ projectId: P, limit: String(limit) });
  if (f.flowId) q.append('flowId', f.flowId);
  for (const s of f.status ?? []) q.append('status', s);
  for (const t of f.tags ?? []) q.append('tags', t);
  if (f.failedStepName) q.append('failedStepName', f.failedStepName);
  if (f.createdAfter) q.append('createdAfter', f.createdAfter);
  if (f.createdBefore) q.append('createdBefore', f.createdBefore);
  for (const id of f.flowRunIds ?? []) q.append('flowRunIds', id);
  if (f.includeArchived !== undefined) q.append('includeArchived', String(f.includeArchived));
  return q.toString();
}

interface Page {
  ids: string[];
  next: string | null;
  previous: string | null;
}

describe('paging through thousands of runs that share timestamps, over HTTP', () => {
  let system: Awaited<ReturnType<typeof startSystem>>;
  let url: string;
  let key: string;
  let otherKey: string;
  const runs = seedRuns();
  const byId = new Map(runs.map((r) => [r.id, r]));
  let requests = 0;

  const get = async (p: string, k = key): Promise<HttpAnswer> => {
    requests++;
    const a = await httpRequest(url, 'GET', p, { key: k });
    assertContractAnswer(`GET ${p}`, a);
    return a;
  };

  const page = async (query: string, cursor: string | null): Promise<Page & { data: FlowRun[] }> => {
    const a = await get(`/api/v1/flow-runs?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    expect(a.status).toBe(200);
    const data = a.body.data as FlowRun[];
    return { data, ids: data.map((r) => r.id), next: a.body.next, previous: a.body.previous };
  };

  /**
   * Follows `next` from the first page to the last, then `previous` from the last back to the
   * first; checks page sizes, cursors at the ends, every item against the seed, and that both
   * walks saw the same pages. Returns the forward pages.
   */
  async function walk(f: Filters, limit: number, oracle: Filters = f): Promise<Page[]> {
    const query = queryOf(f, limit);
    const forward: Page[] = [];
    let cursor: string | null = null;
    do {
      const p = await page(query, cursor);
      for (const run of p.data) {
        const seeded = byId.get(run.id);
        expect(seeded && { id: run.id, projectId: run.projectId }).toEqual({ id: run.id, projectId: P });
        // What the list shows is what was stored (created at millisecond precision).
        expect(run.created).toBe(`${seeded!.created.slice(0, 23)}Z`);
        expect(run.archivedAt !== null).toBe(seeded!.archived);
        expect(run).not.toHaveProperty('steps');
      }
      forward.push({ ids: p.ids, next: p.next, previous: p.previous });
      cursor = p.next;
      if (forward.length > 200) throw new Error('the walk forward does not end');
    } while (cursor);

    expect(forward[0].previous).toBeNull();
    expect(forward[forward.length - 1].next).toBeNull();
    forward.slice(0, -1).forEach((p, i) => expect({ page: i, size: p.ids.length }).toEqual({ page: i, size: limit }));
    const all = forward.flatMap((p) => p.ids);
    expect(new Set(all).size).toBe(all.length);
    expect(all).toEqual(expectedIds(runs, oracle));

    const backward: string[][] = [forward[forward.length - 1].ids];
    cursor = forward[forward.length - 1].previous;
    while (cursor) {
      const p = await page(query, cursor);
      backward.unshift(p.ids);
      cursor = p.previous;
      if (backward.length > forward.length) throw new Error('walked back past the first page');
    }
    expect(backward).toEqual(forward.map((p) => p.ids));
    return forward;
  }

  beforeAll(async () => {
    // The list is served by the gateway from the read model; the gateway is ready only with a
    // command service to talk to. No projector: nothing may rewrite the seeded rows.
    system = await startSystem(['command-service', 'api-gateway']);
    url = system.apps['api-gateway'].url;
    key = (await newApiKey(system.db.url, P)).key;
    otherKey = (await newApiKey(system.db.url, OTHER)).key;

    const pg = new Client({ connectionString: system.db.url });
    await pg.connect();
    try {
      // One statement: arrays unnested into rows. The columns are the projector's (run_views).
      await pg.query(
        `insert into run_views (id, project_id, flow_id, flow_version_id, flow_display_name, status, environment,
           triggered_by, tags, steps_count, failed_step_name, attempt, start_time, archived_at, created, version)
         select id, project_id, flow_id, 'ver_1', 'Paging', status, 'PRODUCTION', 'key_seed', string_to_array(tags, ','),
           2, failed_step_name, 1, created, case when archived then created + interval '1 day' end, created, 1
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::boolean[], $8::timestamptz[])
           as t(id, project_id, flow_id, status, tags, failed_step_name, archived, created)`,
        [
          runs.map((r) => r.id),
          runs.map((r) => r.projectId),
          runs.map((r) => r.flowId),
          runs.map((r) => r.status),
          runs.map((r) => r.tags.join(',')),
          runs.map((r) => r.failedStepName),
          runs.map((r) => r.archived),
          runs.map((r) => r.created),
        ],
      );
      await pg.query('analyze run_views');
      // The seed is what the test thinks it is: hundreds of runs per instant, to the microsecond.
      const { rows } = await pg.query<{ n: string }>(
        `select count(*) as n from run_views where project_id = $1 group by created order by count(*) desc limit 1`,
        [P],
      );
      expect(Number(rows[0].n)).toBeGreaterThan(900);
    } finally {
      await pg.end();
    }
  }, 120_000);

  afterAll(async () => {
    await system?.stop();
  });

  it('the seed has the shape the walks rely on', () => {
    const mine = runs.filter((r) => r.projectId === P);
    expect(mine).toHaveLength(3000);
    expect(new Set(mine.map((r) => r.created)).size).toBe(INSTANTS.length);
    expect(mine.filter((r) => r.archived)).toHaveLength(300);
  });

  it('walks all 2 700 unarchived runs with limit=100: each once, newest first, id breaking ties, the same pages back as forward', async () => {
    const pages = await walk({}, 100);
    expect(pages).toHaveLength(27);
    // Page boundaries fall inside groups of runs that share one microsecond.
    const createdOf = (id: string) => byId.get(id)!.created;
    const inside = pages.slice(0, -1).filter((p, i) => createdOf(p.ids[p.ids.length - 1]) === createdOf(pages[i + 1].ids[0]));
    expect(inside.length).toBeGreaterThan(10);
  });

  it('walks all 3 000 runs with includeArchived=true, and the same walk twice gives the same pages', async () => {
    const first = await walk({ includeArchived: true }, 100);
    expect(first.flatMap((p) => p.ids)).toHaveLength(3000);
    const again = await walk({ includeArchived: true }, 100);
    expect(again.map((p) => p.ids)).toEqual(first.map((p) => p.ids));
  });

  it('includeArchived=false is the default, and the other project sees only its own 300 runs', async () => {
    const explicit = await walk({ includeArchived: false }, 100);
    expect(explicit.flatMap((p) => p.ids)).toEqual(expectedIds(runs, {}));
    const other = await get(`/api/v1/flow-runs?projectId=${OTHER}&limit=100`, otherKey);
    expect((other.body.data as FlowRun[]).every((r) => r.projectId === OTHER)).toBe(true);
    const refused = await get(`/api/v1/flow-runs?projectId=${P}&limit=100`, otherKey);
    expect(refused.status).toBe(404);
  });

  const someIds = () =>
    runs
      .filter((r) => r.projectId === P)
      .filter((_, i) => i % 31 === 0)
      .slice(0, 90)
      .map((r) => r.id)
      // Another project's run among them is never answered.
      .concat(runs.find((r) => r.projectId === OTHER)!.id);

  const FILTERED: readonly (readonly [string, () => Filters, number])[] = [
    ['status (one)', () => ({ status: ['FAILED'] }), 100],
    ['status (three)', () => ({ status: ['RUNNING', 'PAUSED', 'TIMEOUT'] }), 100],
    ['flowId', () => ({ flowId: 'flow_1' }), 100],
    ['tags must all match', () => ({ tags: ['even', 'five'] }), 100],
    ['tags: one tag', () => ({ tags: ['odd'] }), 100],
    ['failedStepName', () => ({ failedStepName: 'step_2' }), 100],
    ['createdAfter is inclusive to the microsecond', () => ({ createdAfter: INSTANTS[1] }), 100],
    ['createdBefore is inclusive to the microsecond', () => ({ createdBefore: INSTANTS[2] }), 100],
    ['createdAfter and createdBefore inside one millisecond', () => ({ createdAfter: INSTANTS[1], createdBefore: INSTANTS[2], includeArchived: true }), 100],
    ['flowRunIds (with an archived one and another project’s)', () => ({ flowRunIds: someIds() }), 100],
    ['flowRunIds with includeArchived=true', () => ({ flowRunIds: someIds(), includeArchived: true }), 7],
    [
      'everything combined, limit 37',
      () => ({ flowId: 'flow_0', status: ['FAILED', 'SUCCEEDED', 'STOPPED'], tags: ['all'], createdAfter: INSTANTS[0], createdBefore: INSTANTS[4], includeArchived: true }),
      37,
    ],
    ['failed at a step, of one flow, with a tag', () => ({ failedStepName: 'step_0', flowId: 'flow_2', tags: ['even'] }), 100],
  ];

  it.each(FILTERED)('%s: the walk gives exactly the expected runs', async (_what, filters, limit) => {
    const f = filters();
    const expected = expectedIds(runs, f);
    // Each filter selects a real, strict subset, so a filter that is ignored would fail here.
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(3000);
    const pages = await walk(f, limit);
    expect(pages.flatMap((p) => p.ids)).toEqual(expected);
  });

  it('a time filter given with an offset means the same instant', async () => {
    // 13:00:00.001+01:00 is 12:00:00.001000Z, an instant shared by hundreds of runs: inclusive.
    const withOffset = await walk({ createdAfter: '2024-03-01T13:00:00.001+01:00' }, 100, { createdAfter: INSTANTS[3] });
    expect(withOffset.flatMap((p) => p.ids)).toHaveLength(expectedIds(runs, { createdAfter: INSTANTS[3] }).length);
  });

  it('an empty window answers an empty page without cursors', async () => {
    const empty = await page(queryOf({ createdAfter: INSTANTS[5], createdBefore: INSTANTS[0] }, 100), null);
    expect(empty).toMatchObject({ ids: [], next: null, previous: null });
  });

  it('`next` of a page reached going back opens the same page as before', async () => {
    const query = queryOf({}, 100);
    const p1 = await page(query, null);
    const p2 = await page(query, p1.next);
    const p3 = await page(query, p2.next);
    const back2 = await page(query, p3.previous);
    expect(back2.ids).toEqual(p2.ids);
    const back1 = await page(query, back2.previous);
    expect(back1.ids).toEqual(p1.ids);
    expect(back1.previous).toBeNull();
    const again3 = await page(query, back2.next);
    expect(again3.ids).toEqual(p3.ids);
  });

  afterAll(() => {
    // The walks are real work: make sure they happened (a vacuous pass would show here).
    expect(requests).toBeGreaterThan(300);
  });
});
