import type { PoolClient } from 'pg';
import type { BenchDatabase } from './db';

/**
 * The bulk loader: runs generated in SQL (`generate_series`), written straight into the write model
 * (`run_streams` with the decider's snapshot, `run_events` with the envelopes the command service
 * would append, `execution_data`) and/or the read model (`run_views`, `step_views`) as the
 * projector would build them from those events. Run `i` is a pure function of (spec, i), so the two
 * halves can be loaded separately and still agree; `verify.ts` checks that they do.
 *
 * A run of S steps: triggered (seq 1), then step k started (seq 2k) and finished (seq 2k+1), then
 * the run's end. Status mix: 70% SUCCEEDED, 15% FAILED (its last step failed), 5% RUNNING (last
 * step started), 5% STOPPED and 5% TIMEOUT (stopped while the last step ran). Events are 10 ms
 * apart; runs `spacingMs` apart from `baseMs`. Flow k of `flows` carries the tags `team-(k%4)` and,
 * for every fifth flow, `critical`.
 */
export interface SeedSpec {
  readonly projectId: string;
  /** First run index (inclusive) and last (exclusive). */
  readonly from: number;
  readonly to: number;
  readonly baseMs: number;
  readonly spacingMs: number;
  readonly flows: number;
  readonly steps: number;
  /** One status for every run, or the mix above. */
  readonly status?: 'SUCCEEDED' | 'FAILED' | 'RUNNING' | 'STOPPED' | 'TIMEOUT';
  /** run_streams + execution_data. */
  readonly writeModel: boolean;
  /** run_events (the history); `published`: as already sent by the relay (not in its queue). */
  readonly events: boolean;
  readonly published: boolean;
  /** run_views + step_views, into these tables (default: the real ones). */
  readonly views: boolean;
  readonly viewTables?: { readonly runs: string; readonly steps: string };
  /** False: leave the vacuum and checkpoint to a later load (the last one settles the tables). */
  readonly settle?: boolean;
  /** Runs per transaction (per lane). */
  readonly chunk?: number;
}

export const SEED_FUNCTIONS = `
  -- Each function is declared as volatile as its body (timestamptz arithmetic and to_json of a
  -- timestamp are stable: they read the time zone and DateStyle), and each is called on plain columns,
  -- so the planner inlines it into the statement: called through the SQL-function executor instead
  -- (an immutable wrapper around a stable body, or an expensive argument used twice, is never
  -- inlined), the three took 2.9 s over 400 000 events, inline 1.3 s (session 26).
  create or replace function bench_ts(ms bigint) returns timestamptz language sql stable
    as $$ select timestamptz 'epoch' + ms * interval '1 millisecond' $$;
  -- Date.prototype.toISOString's spelling. Whole seconds through to_json (ISO 8601 whatever the
  -- DateStyle), the milliseconds appended: a third of to_char's time (~2 vs ~6.6 µs here, once per
  -- event); the same text for every instant (compared over 3 000 000 of them, 2020–2029).
  create or replace function bench_iso(ms bigint) returns text language sql stable
    as $$ select (to_json(timestamp 'epoch' + (ms / 1000) * interval '1 second') #>> '{}') || '.' || lpad((ms % 1000)::text, 3, '0') || 'Z' $$;
  create or replace function bench_uuid7(ms bigint, h text) returns text language sql immutable as $$
    select substr(lpad(to_hex(ms), 12, '0'), 1, 8) || '-' || substr(lpad(to_hex(ms), 12, '0'), 9, 4) || '-7'
      || substr(h, 1, 3) || '-' || substr('89ab', get_byte(decode(h, 'hex'), 5) % 4 + 1, 1) || substr(h, 4, 3)
      || '-' || substr(h, 7, 12) $$;
  create or replace function bench_step_type(k int) returns text language sql immutable
    as $$ select case when k % 2 = 1 then 'http' else 'transform' end $$;
`;

/** The runs of one chunk, with every per-run attribute the tables need. */
const RUNS = `
  create temp table seed_runs on commit drop as
  select x.*, 'flow_bench_' || lpad(x.flow_no::text, 3, '0') as flow_id,
    'flowver_bench_' || lpad(x.flow_no::text, 3, '0') as flow_version_id,
    'Bench flow ' || x.flow_no as flow_name,
    case when x.flow_no % 5 = 0 then array['team-' || (x.flow_no % 4), 'critical'] else array['team-' || (x.flow_no % 4)] end as tags,
    case when x.status in ('SUCCEEDED', 'FAILED') then 2 * $6::int + 2 when x.status = 'RUNNING' then 2 * $6::int else 2 * $6::int + 1 end as n_events,
    -- steps with a result (execution data and a finished step view)
    case when x.status in ('SUCCEEDED', 'FAILED') then $6::int else $6::int - 1 end as n_done
  from (
    select i, c.created_ms, bench_uuid7(c.created_ms, c.h) as id, (i % $5::int) as flow_no,
      coalesce($7::text, case
        when c.r < 70 then 'SUCCEEDED' when c.r < 85 then 'FAILED' when c.r < 90 then 'RUNNING'
        when c.r < 95 then 'STOPPED' else 'TIMEOUT' end) as status
    from generate_series($1::bigint, $2::bigint - 1) i,
      lateral (select $3::bigint + i * $4::bigint as created_ms, md5($8::text || i) as h) h0,
      lateral (select h0.created_ms, h0.h, (get_byte(decode(h0.h, 'hex'), 10) * 256 + get_byte(decode(h0.h, 'hex'), 11)) % 100 as r) c
  ) x`;

const EVENTS = `
  create temp table seed_events on commit drop as
  select r.id as run_id, r.flow_id, r.flow_version_id, r.flow_name, r.tags, s.seq, r.created_ms + (s.seq - 1) * 10 as ev_ms,
    s.seq / 2 as k, t.type, md5(r.id || ':' || s.seq) as h
  from seed_runs r
  cross join lateral generate_series(1, r.n_events) s(seq)
  cross join lateral (select case
      when s.seq = 1 then 'flowrun.triggered.v1'
      when s.seq % 2 = 0 and s.seq <= 2 * $1::int then 'flowrun.step.started.v1'
      when s.seq < 2 * $1::int + 1 then 'flowrun.step.succeeded.v1'
      when s.seq = 2 * $1::int + 1 then case r.status when 'SUCCEEDED' then 'flowrun.step.succeeded.v1'
        when 'FAILED' then 'flowrun.step.failed.v1' when 'STOPPED' then 'flowrun.stopped.v1' else 'flowrun.timed-out.v1' end
      else case r.status when 'SUCCEEDED' then 'flowrun.succeeded.v1' else 'flowrun.failed.v1' end
    end as type) t`;

const INSERT_EVENTS = `
  insert into run_events (event_id, run_id, seq, type, envelope, traceparent, created_at)
  select e.event_id, e.run_id, e.seq, e.type, jsonb_build_object(
      'specversion', '1.0', 'id', e.event_id, 'type', e.type, 'source', 'flow-runs/command-service',
      'time', bench_iso(e.ev_ms), 'subject', e.run_id, 'projectId', $1::text, 'flowId', e.flow_id, 'seq', e.seq,
      'datacontenttype', 'application/json', 'data', e.data),
    null, bench_ts(e.ev_ms)
  from (
    select se.*, bench_uuid7(se.ev_ms, se.h) as event_id, case se.type
      when 'flowrun.triggered.v1' then jsonb_build_object('flowVersionId', se.flow_version_id, 'flowDisplayName', se.flow_name,
        'environment', 'PRODUCTION', 'triggeredBy', null, 'tags', to_jsonb(se.tags), 'stepsCount', $2::int, 'parentRunId', null,
        'failParentOnFailure', false, 'retryOf', null, 'triggerDataRef', 'exd_' || se.run_id || '_t', 'logsFileId', null)
      when 'flowrun.step.started.v1' then jsonb_build_object('stepName', 'step_' || se.k, 'stepType', bench_step_type(se.k), 'attempt', 1)
      when 'flowrun.step.succeeded.v1' then jsonb_build_object('stepName', 'step_' || se.k, 'stepType', bench_step_type(se.k), 'attempt', 1,
        'durationMs', 10, 'dataRef', 'exd_' || se.run_id || '_' || se.k)
      when 'flowrun.step.failed.v1' then jsonb_build_object('stepName', 'step_' || se.k, 'stepType', bench_step_type(se.k), 'attempt', 1,
        'durationMs', 10, 'dataRef', 'exd_' || se.run_id || '_' || se.k)
      when 'flowrun.succeeded.v1' then jsonb_build_object('durationMs', (se.seq - 1) * 10)
      when 'flowrun.failed.v1' then jsonb_build_object('failedStepName', 'step_' || $2::int, 'durationMs', (se.seq - 1) * 10)
      when 'flowrun.stopped.v1' then jsonb_build_object('reason', 'cancelled by request')
      else jsonb_build_object('reason', 'EXECUTION_TIME')
    end as data
    -- Not flattened into the outer query: the id it uses twice is computed once.
    from seed_events se offset 0
  ) e
  order by e.ev_ms, e.run_id, e.seq`;

const STEP_STATE = `
  (select jsonb_object_agg('step_' || k, case
      when k <= r.n_done then jsonb_build_object('type', bench_step_type(k),
        'status', case when k = $2::int and r.status = 'FAILED' then 'FAILED' else 'SUCCEEDED' end,
        'attempt', 1, 'dataRef', 'exd_' || r.id || '_' || k)
      else jsonb_build_object('type', bench_step_type(k), 'status', 'RUNNING', 'attempt', 1) end)
   from generate_series(1, $2::int) k)`;

const INSERT_STREAMS = `
  insert into run_streams (run_id, project_id, flow_id, version, state, created_at, updated_at, status, parent_run_id,
    running_since, resume_deadline, finished_at, purged_at)
  select r.id, $1::text, r.flow_id, r.n_events,
    jsonb_build_object('exists', true, 'status', r.status, 'attempt', 1, 'retryCount', 0, 'archived', false, 'purged', false,
      'startTime', bench_iso(r.created_ms), 'runningSince', bench_iso(r.created_ms),
      'failedStepName', case when r.status = 'FAILED' then 'step_' || $2::int end, 'pause', null, 'requests', '{}'::jsonb,
      'steps', ${STEP_STATE}),
    bench_ts(r.created_ms), bench_ts(r.created_ms + (r.n_events - 1) * 10), r.status, null,
    bench_ts(r.created_ms), null,
    case when r.status <> 'RUNNING' then bench_ts(r.created_ms + (r.n_events - 1) * 10) end, null
  from seed_runs r`;

const INSERT_DATA = `
  insert into execution_data (ref, run_id, kind, step_name, attempt, input, output, error, bytes, created_at)
  select d.ref, d.run_id, d.kind, d.step_name, d.attempt, d.input, d.output, d.error,
    coalesce(length(d.input::text), 0) + coalesce(length(d.output::text), 0) + coalesce(length(d.error::text), 0), d.at
  from (
    select 'exd_' || r.id || '_t' as ref, r.id as run_id, 'trigger' as kind, null::text as step_name, null::int as attempt,
      null::jsonb as input,
      jsonb_build_object('orderId', r.i, 'customer', jsonb_build_object('id', r.i % 1000, 'email', 'user' || r.i || '@example.com'),
        'items', jsonb_build_array(jsonb_build_object('sku', 'A-1', 'qty', 2), jsonb_build_object('sku', 'B-7', 'qty', 1))) as output,
      null::jsonb as error, bench_ts(r.created_ms) as at
    from seed_runs r
    union all
    select 'exd_' || r.id || '_' || k, r.id, 'step', 'step_' || k, 1,
      jsonb_build_object('url', 'https://api.example.com/orders/' || r.i, 'method', 'POST'),
      case when k = $1::int and r.status = 'FAILED' then null
        else jsonb_build_object('status', 200, 'body', jsonb_build_object('ok', true, 'id', r.i, 'step', k)) end,
      case when k = $1::int and r.status = 'FAILED' then jsonb_build_object('message', 'upstream answered 503') end,
      bench_ts(r.created_ms + 2 * k * 10)
    from seed_runs r cross join lateral generate_series(1, r.n_done) k
  ) d`;

const insertViews = (runs: string, steps: string) => [
  `insert into ${runs} (id, project_id, flow_id, flow_version_id, flow_display_name, status, environment, triggered_by, tags,
     steps_count, parent_run_id, fail_parent_on_failure, retry_of, failed_step_name, attempt, start_time, finish_time,
     archived_at, purged_at, logs_file_id, trigger_data_ref, pause_request_id, pause_step_name, created, version, updated_at)
   select r.id, $1::text, r.flow_id, r.flow_version_id, r.flow_name, r.status, 'PRODUCTION', null, r.tags,
     $2::int, null, false, null, case when r.status = 'FAILED' then 'step_' || $2::int end, 1, bench_ts(r.created_ms),
     case when r.status <> 'RUNNING' then bench_ts(r.created_ms + (r.n_events - 1) * 10) end,
     null, null, null, 'exd_' || r.id || '_t', null, null, bench_ts(r.created_ms), r.n_events, now()
   from seed_runs r`,
  `insert into ${steps} (run_id, step_name, step_type, status, attempt, position, duration_ms, data_ref, started_at, finished_at)
   select r.id, 'step_' || k, bench_step_type(k),
     case when k > r.n_done then 'RUNNING' when k = $1::int and r.status = 'FAILED' then 'FAILED' else 'SUCCEEDED' end,
     1, k, case when k <= r.n_done then 10 end, case when k <= r.n_done then 'exd_' || r.id || '_' || k end,
     bench_ts(r.created_ms + (2 * k - 1) * 10), case when k <= r.n_done then bench_ts(r.created_ms + 2 * k * 10) end
   from seed_runs r cross join lateral generate_series(1, $1::int) k`,
];

/**
 * Loads `spec` chunk by chunk; returns how many runs and events it wrote.
 *
 * In two lanes, each on a connection of its own: the history (`run_events`: alone ~70 % of a load's
 * time) and the rest (write model, views). Each lane writes its tables chunk after chunk in run
 * order, as one connection did, so every table's rows and index entries land in the same order (the
 * same physical layout) — only the two lanes overlap. Both build the same runs: run `i` is a pure
 * function of (spec, i).
 */
export async function seed(db: BenchDatabase, spec: SeedSpec): Promise<{ runs: number; events: number }> {
  await db.q(SEED_FUNCTIONS);
  const size = spec.chunk ?? 50_000;
  const chunks: { from: number; to: number }[] = [];
  for (let from = spec.from; from < spec.to; from += size) chunks.push({ from, to: Math.min(spec.to, from + size) });
  const runsParams = (k: { from: number; to: number }) => [k.from, k.to, spec.baseMs, spec.spacingMs, spec.flows, spec.steps, spec.status ?? null, spec.projectId];

  const history = async (c: PoolClient) => {
    await c.query(EVENTS, [spec.steps]);
    // Already published: the outbox trigger is not run (session_replication_role), so the relay's
    // queue stays empty; else the trigger queues every event, as for an append.
    if (spec.published) await c.query('set local session_replication_role = replica');
    const { rowCount } = await c.query(INSERT_EVENTS, [spec.projectId, spec.steps]);
    if (spec.published) await c.query('set local session_replication_role = origin');
    return rowCount ?? 0;
  };
  const rest = async (c: PoolClient) => {
    if (spec.writeModel) {
      await c.query(INSERT_STREAMS, [spec.projectId, spec.steps]);
      await c.query(INSERT_DATA, [spec.steps]);
    }
    if (spec.views) {
      const [runs, steps] = insertViews(spec.viewTables?.runs ?? 'run_views', spec.viewTables?.steps ?? 'step_views');
      await c.query(runs, [spec.projectId, spec.steps]);
      await c.query(steps, [spec.steps]);
    }
    return 0;
  };
  // Each lane answers the events it wrote.
  const lane = (write: (c: PoolClient) => Promise<number>) =>
    db.withClient(async (c: PoolClient) => {
      let events = 0;
      for (const k of chunks) {
        await c.query('begin');
        try {
          // The generated rows' estimates are far off (a set-returning function's 1 000 rows a
          // run), enough for JIT compilation: ~0.2 s per statement, more than it saves here.
          await c.query('set local jit = off');
          await c.query(RUNS, runsParams(k));
          events += await write(c);
          await c.query('commit');
        } catch (e) {
          await c.query('rollback');
          throw e;
        }
      }
      return events;
    });
  const written = await Promise.all([
    ...(spec.events ? [lane(history)] : []),
    ...(spec.writeModel || spec.views ? [lane(rest)] : []),
  ]);
  const events = written.reduce((a, b) => a + b, 0);
  // As tables in service would be: vacuumed (visibility map, hint bits) and analysed. Without it
  // autovacuum started on the freshly loaded tables during the first measurements and its work
  // landed in their p99 (the list's first scenarios, the purge's "list before").
  if (spec.settle === false) return { runs: spec.to - spec.from, events };
  await settle(db);
  // And written out: the load and the vacuum leave up to gigabytes of dirty pages, which the
  // checkpointer and the backends (evicting a dirty buffer to read a page) would otherwise write
  // during the measurements.
  await db.q('checkpoint');
  return { runs: spec.to - spec.from, events };
}

/** `vacuum (analyze)` of the schema's tables in two lanes too: the history alone, the rest beside it. */
async function settle(db: BenchDatabase): Promise<void> {
  const tables = await db.q<{ name: string }>(
    `select format('%I', relname) as name from pg_class where relnamespace = current_schema()::regnamespace and relkind = 'r' order by relname`,
  );
  const history = tables.filter((t) => t.name === 'run_events').map((t) => t.name);
  const others = tables.filter((t) => t.name !== 'run_events').map((t) => t.name);
  await Promise.all([history, others].filter((l) => l.length > 0).map((l) => db.q(`vacuum (analyze) ${l.join(', ')}`)));
}

/** The seeded runs' flows (`flow_bench_000`…), each with one published version of `steps` steps, in `project`. */
export const SEED_FLOWS = `
  with f as (
    insert into flows (id, project_id, display_name, tags, latest_version_id)
    select 'flow_bench_' || lpad(i::text, 3, '0'), $1::text, 'Bench flow ' || i, '{}', 'flowver_bench_' || lpad(i::text, 3, '0')
      from generate_series(0, $2::int - 1) i
    returning id, latest_version_id
  )
  insert into flow_versions (id, flow_id, version, display_name, steps)
  select f.latest_version_id, f.id, 1, 'v1',
         (select jsonb_agg(jsonb_build_object('name', 'step_' || k, 'type', 'http', 'settings', '{}'::jsonb)) from generate_series(1, $3::int) k)
    from f`;
