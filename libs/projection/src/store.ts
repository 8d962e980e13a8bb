import type { FlowRunStatus, KnownEnvelope, RunEnvironment, StepStatus } from '@flowruns/contracts';
import { JSON_PARAM, jsonParam } from '@flowruns/database';
import type { LoadedRun, StallReport } from './fold';
import type { RunProjection, RunView, StepView } from './view';

/** Raw SQL with knex-style `?` bindings; MikroORM's `em.execute` satisfies it. */
export interface SqlRunner {
  execute<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

// Each column once, with its SQL type: the select list, the json_to_recordset signature and the
// upsert's SET list all come from here, so a column cannot be read but not written.
const RUN_COLUMNS = {
  id: 'text',
  project_id: 'text',
  flow_id: 'text',
  flow_version_id: 'text',
  flow_display_name: 'text',
  status: 'text',
  environment: 'text',
  triggered_by: 'text',
  tags: 'text[]',
  steps_count: 'integer',
  parent_run_id: 'text',
  fail_parent_on_failure: 'boolean',
  retry_of: 'text',
  failed_step_name: 'text',
  attempt: 'integer',
  start_time: 'timestamptz',
  finish_time: 'timestamptz',
  archived_at: 'timestamptz',
  purged_at: 'timestamptz',
  logs_file_id: 'text',
  trigger_data_ref: 'text',
  pause_request_id: 'text',
  pause_step_name: 'text',
  created: 'timestamptz',
  version: 'integer',
} as const;

const STEP_COLUMNS = {
  run_id: 'text',
  step_name: 'text',
  step_type: 'text',
  status: 'text',
  attempt: 'integer',
  position: 'integer',
  duration_ms: 'integer',
  data_ref: 'text',
  started_at: 'timestamptz',
  finished_at: 'timestamptz',
} as const;

type Columns = Readonly<Record<string, string>>;
type Row<C extends Columns> = {
  [K in keyof C]: C[K] extends 'text[]'
    ? readonly string[]
    : C[K] extends 'integer'
      ? number | null
      : C[K] extends 'boolean'
        ? boolean
        : string | null;
};
type RunRow = Row<typeof RUN_COLUMNS>;
type StepRow = Row<typeof STEP_COLUMNS>;

// Timestamps travel as ISO text (`to_json` keeps microseconds and the offset), never as JS Dates,
// so a row read and written back is unchanged: rebuilds in one batch or many give the same rows.
const selectList = (c: Columns) =>
  Object.entries(c)
    .map(([name, type]) => (type === 'timestamptz' ? `to_json(${name}) #>> '{}' as ${name}` : name))
    .join(', ');
const recordsetSignature = (c: Columns) =>
  Object.entries(c)
    .map(([name, type]) => `${name} ${type}`)
    .join(', ');
const columnList = (c: Columns) => Object.keys(c).join(', ');
const updateList = (c: Columns, key: readonly string[]) =>
  Object.keys(c)
    .filter((n) => !key.includes(n))
    .map((n) => `${n} = excluded.${n}`)
    .join(', ');

/** A list of ids as one bound parameter (knex would expand a JS array into a list of bindings). */
const idsParam = (ids: readonly string[]) => jsonParam(ids);
const ANY_ID = `any(array(select json_array_elements_text(${JSON_PARAM})))`;

// Sorted ids lock rows in one order, so two transactions over overlapping runs cannot deadlock.
const SELECT_RUNS = `select ${selectList(RUN_COLUMNS)} from run_views where id = ${ANY_ID} order by id for update`;
const SELECT_STEPS = `select ${selectList(STEP_COLUMNS)} from step_views where run_id = ${ANY_ID}`;
const SELECT_STALLS = `select run_id from projection_stalls where run_id = ${ANY_ID}`;

// The version guard keeps a row from ever moving backwards, even if two consumers briefly hold the
// same partition during a rebalance; `returning` says which runs this transaction actually wrote.
const UPSERT_RUNS = `
  insert into run_views (${columnList(RUN_COLUMNS)}, updated_at)
  select ${columnList(RUN_COLUMNS)}, now() from json_to_recordset(${JSON_PARAM}) as x(${recordsetSignature(RUN_COLUMNS)})
  on conflict (id) do update set ${updateList(RUN_COLUMNS, ['id'])}, updated_at = excluded.updated_at
  where run_views.version < excluded.version
  returning id`;
const UPSERT_STEPS = `
  insert into step_views (${columnList(STEP_COLUMNS)})
  select ${columnList(STEP_COLUMNS)} from json_to_recordset(${JSON_PARAM}) as x(${recordsetSignature(STEP_COLUMNS)})
  on conflict (run_id, step_name) do update set ${updateList(STEP_COLUMNS, ['run_id', 'step_name'])}`;
const INSERT_STALLS = `
  insert into projection_stalls (run_id, expected_seq, received_seq, event_id, event_type, reason)
  select run_id, expected_seq, received_seq, event_id, event_type, reason
  from json_to_recordset(${JSON_PARAM})
    as x(run_id text, expected_seq integer, received_seq integer, event_id text, event_type text, reason text)
  on conflict (run_id) do nothing`;

/**
 * The events that change only columns of the run's own row, none of them indexed and none derived
 * from the steps: applied by `patchRuns` with one `update` instead of load, fold and upsert. An
 * archive, a purge, and a retry on the latest version (`patchOf`), which starts a run of its own
 * and on the original moves only the version. `evolveRun` is the definition; the patch must give
 * the same row (the rebuild-determinism test projects a history both ways).
 */
export type PatchEventType =
  | 'flowrun.archived.v1'
  | 'flowrun.execution-data-purged.v1'
  | 'flowrun.execution-data-purged-through.v1'
  | 'flowrun.retried.v1';

/** The patch an event is, or null when it takes the fold (a retry from the failed step changes the status and steps). */
export function patchOf(e: KnownEnvelope): RunPatch | null {
  const patch =
    e.type === 'flowrun.archived.v1' ||
    e.type === 'flowrun.execution-data-purged.v1' ||
    e.type === 'flowrun.execution-data-purged-through.v1' ||
    (e.type === 'flowrun.retried.v1' && e.data.strategy === 'ON_LATEST_VERSION');
  return patch ? { runId: e.subject, seq: e.seq, type: e.type, time: e.time } : null;
}

export interface RunPatch {
  readonly runId: string;
  readonly seq: number;
  readonly type: PatchEventType;
  readonly time: string;
}

// Only a run at exactly `seq - 1` and not stalled is patched; anything else (a duplicate, a gap, a
// run with no view, a stalled run) is left to the fold, which knows what to record. The rows are
// locked in id order, as SELECT_RUNS does, so two transactions over the same runs cannot deadlock.
const PATCH_RUNS = `
  with x as (
    select * from json_to_recordset(${JSON_PARAM}) as x(id text, seq integer, type text, time timestamptz)
  ), locked as (
    select v.id from run_views v join x on x.id = v.id
    where v.version = x.seq - 1 and not exists (select 1 from projection_stalls s where s.run_id = v.id)
    order by v.id for update of v
  )
  update run_views v set
    version = x.seq,
    archived_at = case when x.type = 'flowrun.archived.v1' then x.time else v.archived_at end,
    purged_at = case when x.type like 'flowrun.execution-data-purged%' then x.time else v.purged_at end,
    logs_file_id = case when x.type like 'flowrun.execution-data-purged%' then null else v.logs_file_id end,
    trigger_data_ref = case when x.type like 'flowrun.execution-data-purged%' then null else v.trigger_data_ref end,
    updated_at = now()
  from x
  where v.id = x.id and v.id in (select id from locked) and v.version = x.seq - 1
  returning v.id`;

// A new run's first view row: written only where none exists and the run has no stall; a run it
// skips (a redelivered trigger, a stalled run) goes to the fold, which says why.
const CREATE_RUNS = `
  insert into run_views (${columnList(RUN_COLUMNS)}, updated_at)
  select ${columnList(RUN_COLUMNS)}, now() from json_to_recordset(${JSON_PARAM}) as x(${recordsetSignature(RUN_COLUMNS)})
  where not exists (select 1 from projection_stalls s where s.run_id = x.id)
  on conflict (id) do nothing
  returning id`;

/**
 * Writes the first view row of runs whose only event in the batch is their trigger (`seq` 1), as
 * the fold would (`evolveRun` from no view; a trigger makes no step rows): one insert instead of
 * the fold's load of rows that are not there, lock and upsert. Returns the runs it wrote; the others
 * are left to the fold.
 */
export async function createRuns(sql: SqlRunner, views: readonly RunView[]): Promise<Set<string>> {
  if (views.length === 0) return new Set();
  const rows = await sql.execute<{ id: string }>(CREATE_RUNS, [jsonParam(views.map(toRunRow))]);
  return new Set(rows.map((r) => r.id));
}

/** Applies one patch event per run (see `patchOf`); returns the runs it wrote. */
export async function patchRuns(sql: SqlRunner, patches: readonly RunPatch[]): Promise<Set<string>> {
  if (patches.length === 0) return new Set();
  const rows = await sql.execute<{ id: string }>(PATCH_RUNS, [
    jsonParam(patches.map((p) => ({ id: p.runId, seq: p.seq, type: p.type, time: p.time }))),
  ]);
  return new Set(rows.map((r) => r.id));
}

/**
 * Records the ranges of `flowrun.execution-data-purged-through.v1` events (`run_view_purge_ranges`):
 * a project's runs whose finish key falls in one read as purged at its time (`RunViews`). Written
 * whatever became of the event on its own run (a duplicate, a stalled run), and idempotent: a range
 * is keyed by its project and its end.
 */
export async function recordPurgeRanges(sql: SqlRunner, events: readonly KnownEnvelope[]): Promise<void> {
  const ranges = events.flatMap((e) =>
    e.type === 'flowrun.execution-data-purged-through.v1'
      ? [
          {
            project_id: e.projectId,
            through_finished_at: e.data.throughFinishedAt,
            through_run_id: e.subject,
            from_finished_at: e.data.fromFinishedAt,
            from_run_id: e.data.fromRunId,
            runs: e.data.runs,
            purged_at: e.time,
          },
        ]
      : [],
  );
  if (ranges.length === 0) return;
  await sql.execute(
    `insert into run_view_purge_ranges (project_id, through_finished_at, through_run_id, from_finished_at, from_run_id, runs, purged_at)
     select project_id, through_finished_at, through_run_id, from_finished_at, from_run_id, runs, purged_at
     from json_to_recordset(${JSON_PARAM}) as x(project_id text, through_finished_at timestamptz, through_run_id text,
       from_finished_at timestamptz, from_run_id text, runs integer, purged_at timestamptz)
     on conflict (project_id, through_finished_at, through_run_id) do nothing`,
    [jsonParam(ranges)],
  );
}

/** Locks these runs' view rows in id order (rows that do not exist yet lock nothing). */
export async function lockRuns(sql: SqlRunner, runIds: readonly string[]): Promise<void> {
  const ids = [...new Set(runIds)].sort();
  if (ids.length) await sql.execute(`select id from run_views where id = ${ANY_ID} order by id for update`, [idsParam(ids)]);
}

const toRunRow = (v: RunView): RunRow => ({
  id: v.id,
  project_id: v.projectId,
  flow_id: v.flowId,
  flow_version_id: v.flowVersionId,
  flow_display_name: v.flowDisplayName,
  status: v.status,
  environment: v.environment,
  triggered_by: v.triggeredBy,
  tags: v.tags,
  steps_count: v.stepsCount,
  parent_run_id: v.parentRunId,
  fail_parent_on_failure: v.failParentOnFailure,
  retry_of: v.retryOf,
  failed_step_name: v.failedStepName,
  attempt: v.attempt,
  start_time: v.startTime,
  finish_time: v.finishTime,
  archived_at: v.archivedAt,
  purged_at: v.purgedAt,
  logs_file_id: v.logsFileId,
  trigger_data_ref: v.triggerDataRef,
  pause_request_id: v.pauseRequestId,
  pause_step_name: v.pauseStepName,
  created: v.created,
  version: v.version,
});

const must = <T>(value: T | null, column: string): T => {
  if (value === null) throw new Error(`${column} is null in the read model`);
  return value;
};

const fromRunRow = (r: RunRow): RunView => ({
  id: must(r.id, 'run_views.id'),
  projectId: must(r.project_id, 'run_views.project_id'),
  flowId: must(r.flow_id, 'run_views.flow_id'),
  flowVersionId: must(r.flow_version_id, 'run_views.flow_version_id'),
  flowDisplayName: must(r.flow_display_name, 'run_views.flow_display_name'),
  // Written only by this projection from validated events, so the text is one of the enums.
  status: must(r.status, 'run_views.status') as FlowRunStatus,
  environment: must(r.environment, 'run_views.environment') as RunEnvironment,
  triggeredBy: r.triggered_by,
  tags: [...r.tags],
  stepsCount: must(r.steps_count, 'run_views.steps_count'),
  parentRunId: r.parent_run_id,
  failParentOnFailure: r.fail_parent_on_failure,
  retryOf: r.retry_of,
  failedStepName: r.failed_step_name,
  attempt: must(r.attempt, 'run_views.attempt'),
  startTime: r.start_time,
  finishTime: r.finish_time,
  archivedAt: r.archived_at,
  purgedAt: r.purged_at,
  logsFileId: r.logs_file_id,
  triggerDataRef: r.trigger_data_ref,
  pauseRequestId: r.pause_request_id,
  pauseStepName: r.pause_step_name,
  created: must(r.created, 'run_views.created'),
  version: must(r.version, 'run_views.version'),
});

const toStepRow = (s: StepView): StepRow => ({
  run_id: s.runId,
  step_name: s.stepName,
  step_type: s.stepType,
  status: s.status,
  attempt: s.attempt,
  position: s.position,
  duration_ms: s.durationMs,
  data_ref: s.dataRef,
  started_at: s.startedAt,
  finished_at: s.finishedAt,
});

const fromStepRow = (r: StepRow): StepView => ({
  runId: must(r.run_id, 'step_views.run_id'),
  stepName: must(r.step_name, 'step_views.step_name'),
  stepType: must(r.step_type, 'step_views.step_type'),
  status: must(r.status, 'step_views.status') as StepStatus,
  attempt: must(r.attempt, 'step_views.attempt'),
  position: must(r.position, 'step_views.position'),
  durationMs: r.duration_ms,
  dataRef: r.data_ref,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
});

/**
 * Loads, and locks, what the projection knows about these runs: three queries for the whole
 * batch, whatever its size. Must run inside the batch's transaction.
 */
export async function loadRuns(sql: SqlRunner, runIds: readonly string[]): Promise<Map<string, LoadedRun>> {
  const ids = [...new Set(runIds)].sort();
  const out = new Map<string, LoadedRun>();
  if (ids.length === 0) return out;
  const runRows = await sql.execute<RunRow>(SELECT_RUNS, [idsParam(ids)]);
  const existing = runRows.map((r) => r.id).filter((id): id is string => id !== null);
  const stepRows = existing.length ? await sql.execute<StepRow>(SELECT_STEPS, [idsParam(existing)]) : [];
  const stallRows = await sql.execute<{ run_id: string }>(SELECT_STALLS, [idsParam(ids)]);

  const steps = new Map<string, Record<string, StepView>>();
  for (const row of stepRows) {
    const s = fromStepRow(row);
    const forRun = steps.get(s.runId) ?? {};
    forRun[s.stepName] = s;
    steps.set(s.runId, forRun);
  }
  const stalled = new Set(stallRows.map((r) => r.run_id));
  const projections = new Map<string, RunProjection>();
  for (const row of runRows) {
    const view = fromRunRow(row);
    projections.set(view.id, { view, steps: steps.get(view.id) ?? {} });
  }
  for (const id of ids) out.set(id, { projection: projections.get(id) ?? null, stalled: stalled.has(id) });
  return out;
}

/**
 * Writes a folded batch: one multi-row upsert per table. Step rows are written only for runs whose
 * view row this transaction actually moved forward, so a stale writer cannot roll steps back.
 */
export async function saveRuns(
  sql: SqlRunner,
  changed: { readonly runs: readonly RunProjection[]; readonly steps: readonly StepView[]; readonly stalls: readonly StallReport[] },
): Promise<{ readonly runsWritten: number; readonly stepsWritten: number }> {
  let runsWritten = 0;
  let stepsWritten = 0;
  if (changed.runs.length) {
    const written = await sql.execute<{ id: string }>(UPSERT_RUNS, [jsonParam(changed.runs.map((p) => toRunRow(p.view)))]);
    runsWritten = written.length;
    const ok = new Set(written.map((r) => r.id));
    const steps = changed.steps.filter((s) => ok.has(s.runId));
    if (steps.length) {
      await sql.execute(UPSERT_STEPS, [jsonParam(steps.map(toStepRow))]);
      stepsWritten = steps.length;
    }
  }
  if (changed.stalls.length) {
    await sql.execute(INSERT_STALLS, [
      jsonParam(
        changed.stalls.map((s) => ({
          run_id: s.runId,
          expected_seq: s.expectedSeq,
          received_seq: s.receivedSeq,
          event_id: s.eventId,
          event_type: s.eventType,
          reason: s.reason,
        })),
      ),
    ]);
  }
  return { runsWritten, stepsWritten };
}
