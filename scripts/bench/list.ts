import { ApiKeyStore } from '@flowruns/access';
import { INTERNAL_TOKEN_HEADER } from '@flowruns/contracts';
import { buildListQuery, decodeCursor, RunViews, type ListRunsQuery } from '@flowruns/run-views';
import { request } from 'undici';
import { toPositional } from './db';
import { fnLoad, httpLoad, runHttpSchedule, type LoadResult } from './load';
import type { Profile } from './profiles';
import { seed, SEED_FLOWS } from './seed';
import { BenchSystem } from './system';
import { log, round } from './util';

export const PROJECT = 'bench_list';
const SPACING_MS = 200;
const FLOWS = 20;
const STEPS = 3;
const BASE_MS = Date.UTC(2026, 0, 1);

/** The list benchmark's runs `from`…`to` (views only), as `list-probe.ts` loads them too. */
export const seedListRuns = (db: BenchSystem['db'], from: number, to: number) =>
  seed(db, { projectId: PROJECT, from, to, baseMs: BASE_MS, spacingMs: SPACING_MS, flows: FLOWS, steps: STEPS, writeModel: false, events: false, published: true, views: true, chunk: 100_000 });

interface Scenario {
  readonly name: string;
  readonly query: Record<string, string>;
}

/**
 * 2 + 3. Lists and one run's detail, over bulk-loaded views: for each size, each scenario through
 * the gateway (p50/p99 at a fixed rate, then req/s closed-loop) and the same SQL straight on
 * Postgres; for page 1 000, also OFFSET pagination and the anchor's pattern (order by `created`
 * only, the cursor compared per second).
 */
export async function benchList(profile: Profile) {
  const p = profile.list;
  const sys = await BenchSystem.create('list');
  try {
    // The one run with 20 steps, with its execution data, for GET /flow-runs/:id.
    await seed(sys.db, { projectId: PROJECT, from: 10_000_000, to: 10_000_001, baseMs: BASE_MS, spacingMs: 0, flows: FLOWS, steps: 20, status: 'SUCCEEDED', writeModel: true, events: false, published: true, views: true });
    const [{ id: bigRunId }] = await sys.db.q<{ id: string }>(`select id from run_views where steps_count = 20`);
    const { gateway: gw } = await sys.startCore();
    const { key } = await new ApiKeyStore(sys.db.runner()).create(PROJECT, 'key_bench_list');
    const auth = { authorization: `Bearer ${key}` };
    const url = (q: Record<string, string>) => `${gw.url}/api/v1/flow-runs?${new URLSearchParams({ projectId: PROJECT, ...q })}`;

    const sizes: unknown[] = [];
    let loaded = 0;
    let get: unknown = null;
    let archivedInTheWay: unknown = null;
    for (const [i, size] of p.sizes.entries()) {
      const t = Date.now();
      await seedListRuns(sys.db, loaded, size);
      loaded = size;
      log(`list: ${size} runs loaded (and vacuumed) in ${round((Date.now() - t) / 1000, 1)} s`);
      const last = i === p.sizes.length - 1;

      // Page N by cursors: follow `next` from page 1, as a client would.
      let cursor = '';
      const walk = Date.now();
      for (let page = 1; page < p.page; page++) {
        const r = await request(url(cursor ? { cursor } : {}), { headers: auth });
        if (r.statusCode !== 200) throw new Error(`page ${page} at ${size} runs: HTTP ${r.statusCode} ${await r.body.text()}`);
        const body = (await r.body.json()) as { next: string | null };
        if (!body.next) throw new Error(`no page ${page + 1} at ${size} runs`);
        cursor = body.next;
      }
      log(`list: page ${p.page} at ${size} runs reached by cursors in ${round((Date.now() - walk) / 1000, 1)} s`);
      const midMs = BASE_MS + Math.floor(size / 2) * SPACING_MS;
      const scenarios: Scenario[] = [
        { name: 'first page', query: {} },
        { name: `page ${p.page} (cursor)`, query: { cursor } },
        { name: 'flowId', query: { flowId: 'flow_bench_007' } },
        { name: 'status=FAILED', query: { status: 'FAILED' } },
        { name: 'status=RUNNING+PAUSED', query: {} },
        { name: 'tags=critical', query: { tags: 'critical' } },
        { name: 'created window (1 h)', query: { createdAfter: new Date(midMs - 3_600_000).toISOString(), createdBefore: new Date(midMs).toISOString() } },
        { name: 'failedStepName', query: { failedStepName: `step_${STEPS}` } },
      ];
      const results: Record<string, unknown>[] = [];
      for (const s of scenarios) {
        // Two statuses: the parameter repeated.
        const target = s.name === 'status=RUNNING+PAUSED' ? `${url({})}&status=RUNNING&status=PAUSED` : url(s.query);
        const q: ListRunsQuery = toListQuery(s);
        const built = buildListQuery(q);
        const { text, values } = toPositional(built.sql, built.params);
        const apiFixed = await httpLoad({ url: target, headers: auth, connections: 8, durationS: p.fixedS, rate: p.rateRps });
        const row: Record<string, unknown> = { scenario: s.name, api: apiFixed };
        if (last) {
          row.apiMax = await httpLoad({ url: target, headers: auth, connections: p.connections, durationS: p.maxS });
          row.sql = await fnLoad(() => sys.db.pool.query(text, values), { concurrency: 8, durationS: p.sqlS, rate: p.rateRps });
          row.sqlMax = await fnLoad(() => sys.db.pool.query(text, values), { concurrency: 8, durationS: p.sqlS });
          row.plan = await planOf(sys, text, values);
        }
        log(`list ${size} ${s.name}: api p50 ${apiFixed.p50Ms} p99 ${apiFixed.p99Ms} ms (${apiFixed.errors} errors)`);
        results.push(row);
      }
      const alternatives = last ? await alternativesAt(sys, cursor, p) : null;
      // Page 1 and page N side by side (interleaved, one schedule): the ratio the target names.
      const sideBySide = last
        ? await runHttpSchedule({
            urls: { 'page 1': url({}), [`page ${p.page}`]: url({ cursor }) },
            headers: auth,
            connections: 8,
            durationS: Math.max(p.fixedS, 10),
            rate: p.rateRps,
          })
        : null;
      if (sideBySide) {
        const [a, b] = Object.values(sideBySide);
        log(`list ${size} page 1 vs page ${p.page} interleaved: p50 ${a.p50Ms} / ${b.p50Ms}, p99 ${a.p99Ms} / ${b.p99Ms} ms`);
      }
      sizes.push({ runs: size, scenarios: results, alternatives, sideBySide });
      if (last) {
        const target = `${gw.url}/api/v1/flow-runs/${bigRunId}`;
        // Its raw limit: the gateway's own read (`RunViews.getRun`: the run, its steps, their
        // execution data; three queries) from the harness on a pg pool, no HTTP.
        const views = new RunViews(sys.db.runner());
        const read = async () => {
          if (!(await views.getRun(PROJECT, bigRunId))) throw new Error(`run ${bigRunId} not found`);
        };
        get = {
          steps: 20,
          api: await httpLoad({ url: target, headers: auth, connections: 8, durationS: p.fixedS, rate: p.rateRps }),
          apiMax: await httpLoad({ url: target, headers: auth, connections: p.connections, durationS: p.maxS }),
          sql: await fnLoad(read, { concurrency: 8, durationS: p.sqlS, rate: p.rateRps }),
          sqlMax: await fnLoad(read, { concurrency: 8, durationS: p.sqlS }),
        };
        archivedInTheWay = await listWithNewestArchived(size, url, auth);
      }
    }
    const trigger = await triggerOneRun(sys, gw.url, p);
    await sys.stop();
    return { config: { ...p, flows: FLOWS, steps: STEPS, limit: 10, project: 'one project holds every run' }, sizes, get, archivedInTheWay, trigger };
  } catch (e) {
    await sys.stop().catch(() => undefined);
    throw e;
  }

  /**
   * The newest half of the runs archived (as a user cleaning up recent noise would, and as the
   * reference recommends "to improve query performance"), then the default list, which leaves
   * archived runs out, and the list with `includeArchived=true`: first page, unfiltered and by
   * status, through the API and in SQL.
   */
  async function listWithNewestArchived(size: number, url: (q: Record<string, string>) => string, auth: Record<string, string>) {
    const t = Date.now();
    const since = new Date(BASE_MS + Math.floor(size / 2) * SPACING_MS).toISOString();
    const [{ n }] = await sys.db.q<{ n: string }>(
      `with a as (update run_views set archived_at = now() where project_id = $1 and created >= $2::timestamptz returning 1) select count(*)::text as n from a`,
      [PROJECT, since],
    );
    await sys.db.q('vacuum (analyze) run_views');
    await sys.db.q('checkpoint');
    log(`list: newest ${n} runs archived in ${round((Date.now() - t) / 1000, 1)} s`);
    const out: Record<string, unknown>[] = [];
    const scenarios: Scenario[] = [
      { name: 'first page', query: {} },
      { name: 'status=FAILED', query: { status: 'FAILED' } },
      // The archived runs asked for too: a range of each set's index, merged.
      { name: 'first page, includeArchived', query: { includeArchived: 'true' } },
      { name: 'status=FAILED, includeArchived', query: { status: 'FAILED', includeArchived: 'true' } },
      // A tag (every fifth flow's): the GIN index is over all runs, each set's range filters by it.
      { name: 'tags=critical, includeArchived', query: { tags: 'critical', includeArchived: 'true' } },
    ];
    for (const s of scenarios) {
      const built = buildListQuery(toListQuery(s));
      const { text, values } = toPositional(built.sql, built.params);
      const api = await httpLoad({ url: url(s.query), headers: auth, connections: 8, durationS: p.fixedS, rate: p.rateRps });
      const sql = await fnLoad(() => sys.db.pool.query(text, values), { concurrency: 8, durationS: p.sqlS, rate: p.rateRps });
      log(`list ${size}, newest half archived, ${s.name}: api p50 ${api.p50Ms} p99 ${api.p99Ms} ms, sql p99 ${sql.p99Ms} ms`);
      out.push({ scenario: s.name, api, sql, plan: await planOf(sys, text, values) });
    }
    return { runs: size, archived: Number(n), scenarios: out };
  }

  function toListQuery(s: Scenario): ListRunsQuery {
    const q = s.query;
    return {
      projectId: PROJECT,
      limit: 10,
      includeArchived: q.includeArchived === 'true',
      cursor: q.cursor ?? null,
      flowId: q.flowId,
      status: s.name === 'status=RUNNING+PAUSED' ? ['RUNNING', 'PAUSED'] : q.status ? [q.status as 'FAILED'] : undefined,
      tags: q.tags ? [q.tags] : undefined,
      createdAfter: q.createdAfter,
      createdBefore: q.createdBefore,
      failedStepName: q.failedStepName,
    };
  }
}

async function planOf(sys: BenchSystem, text: string, values: unknown[]): Promise<string> {
  const rows = await sys.db.q<{ 'QUERY PLAN': string }>(`explain (analyze, buffers) ${text}`, values);
  return rows.map((r) => r['QUERY PLAN']).join('\n');
}

/** Page N three ways, straight on Postgres: keyset (what the API runs), OFFSET, and the anchor's pattern. */
async function alternativesAt(sys: BenchSystem, cursor: string, p: Profile['list']) {
  const base: ListRunsQuery = { projectId: PROJECT, limit: 10, includeArchived: false };
  const first = buildListQuery(base);
  const keyset = buildListQuery({ ...base, cursor });
  const offset = { sql: `${first.sql} offset ${(p.page - 1) * 10}`, params: first.params };
  // The anchor: `order by created desc` alone, and the boundary truncated to the second.
  const anchorSql = (sql: string) => {
    const out = sql
      .replace('order by run_views.created desc, run_views.id desc', 'order by run_views.created desc')
      .replace('(created, id) < (?::timestamptz, ?)', "created < date_trunc('second', ?::timestamptz)");
    if (out === sql) throw new Error('the list query changed shape: update the anchor variant');
    return out;
  };
  const boundary = decodeCursor(cursor);
  if (!boundary) throw new Error('undecodable cursor');
  const anchorFirst = { sql: anchorSql(first.sql), params: first.params };
  const anchorPage = {
    sql: anchorSql(keyset.sql),
    params: keyset.params.filter((v) => v !== boundary.id),
  };
  const variants = {
    'keyset page 1': first,
    [`keyset page ${p.page}`]: keyset,
    [`OFFSET page ${p.page}`]: offset,
    'anchor page 1': anchorFirst,
    [`anchor page ${p.page}`]: anchorPage,
  };
  const out: Record<string, { fixed: LoadResult; max: LoadResult; plan: string }> = {};
  for (const [name, v] of Object.entries(variants)) {
    const { text, values } = toPositional(v.sql, v.params);
    out[name] = {
      fixed: await fnLoad(() => sys.db.pool.query(text, values), { concurrency: 8, durationS: p.sqlS, rate: p.rateRps }),
      max: await fnLoad(() => sys.db.pool.query(text, values), { concurrency: 8, durationS: p.sqlS }),
      plan: await planOf(sys, text, values),
    };
    log(`list sql ${name}: p50 ${out[name].fixed.p50Ms} p99 ${out[name].fixed.p99Ms} ms, ${out[name].max.rps} q/s`);
  }
  return out;
}

/**
 * 3, the write beside the reads: one run triggered per request through the gateway (`POST
 * /api/v1/flows/:flowId/run`, a small JSON payload, no `Idempotency-Key`), at the list's fixed rate
 * and closed loop, in a project of its own after the lists were measured; beside it the same
 * trigger straight to the command service's internal route (no gateway: its auth, rate limit and
 * the batching of triggers into one internal call; the command service groups concurrent single
 * triggers into shared transactions itself). The projector folds the new runs meanwhile; no
 * worker runs them.
 */
async function triggerOneRun(sys: BenchSystem, gatewayUrl: string, p: Profile['list']) {
  const project = 'bench_trigger';
  await sys.db.q(SEED_FLOWS, [project, 1, 3]);
  const { key } = await new ApiKeyStore(sys.db.runner()).create(project, 'key_bench_trigger');
  const payload = { order: 'o_4711', customer: { id: 'c_42', tier: 'gold' }, items: [{ sku: 'sku_1', qty: 2 }] };
  const api = { url: `${gatewayUrl}/api/v1/flows/flow_bench_000/run`, headers: { authorization: `Bearer ${key}` }, post: JSON.stringify(payload) };
  const internal = {
    url: `${sys.app('command-service').url}/internal/flows/flow_bench_000/runs`,
    headers: { [INTERNAL_TOKEN_HEADER]: sys.env.INTERNAL_API_TOKEN },
    post: JSON.stringify({ projectId: project, payload }),
  };
  const result = {
    payloadBytes: api.post.length,
    api: await httpLoad({ ...api, connections: 8, durationS: p.fixedS, rate: p.rateRps }),
    apiMax: await httpLoad({ ...api, connections: p.connections, durationS: p.maxS }),
    internal: await httpLoad({ ...internal, connections: 8, durationS: p.fixedS, rate: p.rateRps }),
    internalMax: await httpLoad({ ...internal, connections: p.connections, durationS: p.maxS }),
  };
  const runs = Number((await sys.db.one<{ n: string }>(`select count(*)::text as n from run_streams where project_id = $1`, [project])).n);
  const answered = result.api.requests + result.apiMax.requests + result.internal.requests + result.internalMax.requests;
  // Every answered trigger started a run (the schedule's warm-up requests start some more).
  if (runs < answered) throw new Error(`trigger: ${answered} answered, ${runs} runs in the write model`);
  log(`trigger: api p50 ${result.api.p50Ms} p99 ${result.api.p99Ms} ms, ${result.apiMax.rps} req/s; internal p50 ${result.internal.p50Ms} p99 ${result.internal.p99Ms} ms, ${result.internalMax.rps} req/s`);
  return { ...result, runs };
}
