import type { FlowRun, FlowRunStatus, FlowRunWithSteps, StepResult } from '@flowruns/contracts';
import { isoMicrosSql } from '@flowruns/database';
import { ExecutionDataStore } from '@flowruns/execution-data';
import { decodeCursor, encodeCursor, InvalidCursorError, type Cursor } from './cursor';

/** Raw SQL access (MikroORM's `em.execute` on a fork satisfies it). Knex-style `?` bindings. */
export interface SqlRunner {
  execute<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

export const MAX_LIST_LIMIT = 100;

/**
 * Which runs of one project: the filters shared by list pages and bulk scans. Times are ISO 8601
 * strings, passed to Postgres as they are (no ms rounding).
 */
export interface RunSelection {
  readonly projectId: string;
  readonly flowId?: string;
  /** Any of these statuses. */
  readonly status?: readonly FlowRunStatus[];
  /** All of these tags. */
  readonly tags?: readonly string[];
  readonly failedStepName?: string;
  /** Inclusive lower bound on `created`. */
  readonly createdAfter?: string;
  /** Inclusive upper bound on `created`. */
  readonly createdBefore?: string;
  /** Any of these run ids. */
  readonly flowRunIds?: readonly string[];
  /** None of these run ids. */
  readonly excludeFlowRunIds?: readonly string[];
  readonly includeArchived?: boolean;
}

/** A run list request: a selection, a page size and where to start. */
export interface ListRunsQuery extends RunSelection {
  readonly limit: number;
  /** An opaque cursor from a previous page's `next` or `previous`. */
  readonly cursor?: string | null;
}

/** A position in list order (`created desc, id desc`); `created` with microseconds. */
export interface RunKey {
  readonly created: string;
  readonly id: string;
}

/** Largest page of a bulk id scan. */
export const MAX_SCAN_PAGE = 10_000;

export interface RunPage {
  readonly data: FlowRun[];
  /** Opens the page after this one (older runs); null on the last page. */
  readonly next: string | null;
  /** Opens the page before this one (newer runs); null on the first page. */
  readonly previous: string | null;
}

interface RunRow {
  id: string;
  project_id: string;
  flow_id: string;
  flow_version_id: string;
  flow_display_name: string;
  status: FlowRunStatus;
  environment: 'PRODUCTION' | 'TESTING';
  triggered_by: string | null;
  tags: string[];
  steps_count: number;
  parent_run_id: string | null;
  retry_of: string | null;
  failed_step_name: string | null;
  attempt: number;
  // ISO strings, rendered by Postgres (see LIST_COLUMNS).
  start_time_iso: string | null;
  finish_time_iso: string | null;
  archived_at_iso: string | null;
  purged_at_iso: string | null;
  pause_request_id: string | null;
  pause_step_name: string | null;
  created_iso: string;
  /** `created` with microseconds, for cursors. */
  created_key: string;
}

interface RunDetailRow extends RunRow {
  logs_file_id: string | null;
  trigger_data_ref: string | null;
}

interface StepRow {
  step_name: string;
  step_type: string;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'PAUSED';
  attempt: number;
  duration_ms: number | null;
  data_ref: string | null;
}

// Timestamps are rendered by Postgres, in UTC, so the answer depends neither on the session's
// TimeZone nor on how the driver is told to parse timestamptz (MikroORM keeps them as strings).
const isoMs = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as ${column}_iso`;

/** `created` with all six fractional digits, the exact value a keyset boundary needs. */
const CREATED_KEY = `${isoMicrosSql('created')} as created_key`;

/**
 * When the run's execution data went: its own purge (an erase, or the retention range it closes),
 * else the retention range of its project its finish key (`finish_time`, then id) falls in
 * (`run_view_purge_ranges`: the first range ending at or after the key, if it starts before it) —
 * one probe of that table's primary key. A range purge writes nothing on the runs it covers. An
 * expression over a row of `run_views` (named so); exported for the benchmark's and the fault
 * suite's checks, which read many projects.
 */
/** The purge time of the range the `run_views` row's finish key falls in, or null (one probe). */
const RANGE_PROBE = `(
    select case when r.from_finished_at is null or (r.from_finished_at, r.from_run_id) < (run_views.finish_time, run_views.id)
      then r.purged_at end
    from run_view_purge_ranges r
    where r.project_id = run_views.project_id and (r.through_finished_at, r.through_run_id) >= (run_views.finish_time, run_views.id)
    order by r.through_finished_at, r.through_run_id limit 1)`;

export const RUN_VIEW_PURGED_AT = `coalesce(run_views.purged_at, case when run_views.finish_time is not null then ${RANGE_PROBE} end)`;

/**
 * Whether the views show a retention mark: the range that ends at it is in `run_view_purge_ranges`
 * (the projector records it from the purge's event). An expression over a row of `retention_marks`
 * named `m`; for the benchmark's and the fault suite's waits until the views show a purge.
 */
export const RETENTION_MARK_PROJECTED = `exists (select 1 from run_view_purge_ranges r
  where r.project_id = m.project_id and r.through_finished_at = m.finished_at and r.through_run_id = m.run_id)`;

/**
 * `RUN_VIEW_PURGED_AT` for the rows of one project (its id bound to the `?`): the project's last
 * range end is read once per query (an InitPlan), and only a run finished at or before it probes
 * for its range — a page of runs newer than the last purge (a list's first pages) probes nothing.
 */
const PROJECT_PURGED_AT = `coalesce(run_views.purged_at, case when (run_views.finish_time, run_views.id) <= (
    select l.through_finished_at, l.through_run_id from run_view_purge_ranges l where l.project_id = ?
    order by l.through_finished_at desc, l.through_run_id desc limit 1) then ${RANGE_PROBE} end)`;

// The list columns: everything a FlowRun shows and nothing from step data. `created_key` is the
// full microsecond value, for cursors. One `?`: the project's id (`PROJECT_PURGED_AT`).
const LIST_COLUMNS = `id, project_id, flow_id, flow_version_id, flow_display_name, status, environment,
  triggered_by, tags, steps_count, parent_run_id, retry_of, failed_step_name, attempt, ${isoMs('start_time')},
  ${isoMs('finish_time')}, ${isoMs('archived_at')},
  to_char(${PROJECT_PURGED_AT} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as purged_at_iso, pause_request_id, pause_step_name,
  ${isoMs('created')}, ${CREATED_KEY}`;

/** The entry a run's trigger payload appears under in `steps`, as in the reference. */
export const TRIGGER_STEP_NAME = 'trigger';

/**
 * The WHERE clauses (and their bindings, in order) of a selection. Empty arrays are left out:
 * array bindings expand into comma-separated lists, hence `in (?)` and `array[?]`, and an empty
 * one would expand to nothing (a syntax error); it means "no filter" anyway.
 */
function selectionWhere(q: RunSelection): { where: string[]; params: unknown[] } {
  const where = ['project_id = ?'];
  const params: unknown[] = [q.projectId];
  if (q.flowId !== undefined) {
    where.push('flow_id = ?');
    params.push(q.flowId);
  }
  if (q.status?.length) {
    where.push('status in (?)');
    params.push([...q.status]);
  }
  if (q.tags?.length) {
    // `@>` on text[] is what the GIN index on tags serves.
    where.push('tags @> array[?]::text[]');
    params.push([...q.tags]);
  }
  if (q.failedStepName !== undefined) {
    where.push('failed_step_name = ?');
    params.push(q.failedStepName);
  }
  if (q.createdAfter !== undefined) {
    where.push('created >= ?::timestamptz');
    params.push(q.createdAfter);
  }
  if (q.createdBefore !== undefined) {
    where.push('created <= ?::timestamptz');
    params.push(q.createdBefore);
  }
  if (q.flowRunIds?.length) {
    where.push('id in (?)');
    params.push([...q.flowRunIds]);
  }
  if (q.excludeFlowRunIds?.length) {
    where.push('id not in (?)');
    params.push([...q.excludeFlowRunIds]);
  }
  return { where, params };
}

/**
 * Builds the one query behind a list page: an indexed range scan on `(project_id, created desc,
 * id desc)` that starts at the cursor and stops after `limit + 1` matching rows (the extra row only
 * says whether another page exists). No OFFSET and no COUNT, so page N costs what page 1 costs.
 * Exported so tests can EXPLAIN exactly what runs.
 */
export function buildListQuery(q: ListRunsQuery): { sql: string; params: unknown[]; cursor: Cursor | null } {
  if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > MAX_LIST_LIMIT) {
    throw new RangeError(`limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  }
  const cursor = q.cursor ? decodeCursor(q.cursor) : null;
  if (q.cursor && !cursor) throw new InvalidCursorError();

  const { where, params } = selectionWhere(q);
  // A row comparison is what lets the btree start exactly at the boundary: ties on `created` are
  // broken by `id`, so no run is skipped or repeated however many share one microsecond.
  const backwards = cursor?.direction === 'previous';
  if (cursor) {
    where.push(backwards ? '(created, id) > (?::timestamptz, ?)' : '(created, id) < (?::timestamptz, ?)');
    params.push(cursor.created, cursor.id);
  }
  const columns = { text: LIST_COLUMNS, params: [q.projectId] };
  return { ...orderedRange(columns, { where, params }, q.includeArchived === true, backwards ? 'asc' : 'desc', q.limit + 1), cursor };
}

/**
 * `select <columns> from run_views where <where> order by created, id <direction> limit <limit>`,
 * as index range scans: the list's btree indexes hold either the unarchived runs or the archived
 * ones (`where archived_at is [not] null`), so a selection that leaves archived runs out reads one
 * range, and one that includes them reads the same range of both sets, at most `limit` rows from
 * each, and merges them — never a filter along every run, whichever set is in the way.
 */
function orderedRange(
  columns: { text: string; params: unknown[] },
  { where, params }: { where: string[]; params: unknown[] },
  includeArchived: boolean,
  direction: 'asc' | 'desc',
  limit: number,
): { sql: string; params: unknown[] } {
  // Qualified, because an output column of the same name would otherwise win in ORDER BY.
  const order = `run_views.created ${direction}, run_views.id ${direction}`;
  const range = (archived: 'null' | 'not null', extra = '') =>
    `select ${columns.text}${extra} from run_views where ${[...where, `archived_at is ${archived}`].join(' and ')} order by ${order} limit ?`;
  const side = [...columns.params, ...params, limit];
  if (!includeArchived) return { sql: range('null'), params: side };
  const sides = `(${range('null', ', created as range_key')}) union all (${range('not null', ', created as range_key')})`;
  return {
    sql: `select * from (${sides}) as both_sets order by range_key ${direction}, id ${direction} limit ?`,
    params: [...side, ...side, limit],
  };
}

/**
 * One page of a bulk scan: the ids of the selected runs after `after` in list order (`created
 * desc, id desc`), at most `limit` of them. Only ids and keys are read, so a page of thousands is
 * small. Exported so tests can see exactly what runs.
 */
export function buildIdScanQuery(q: RunSelection, after: RunKey | null, limit: number): { sql: string; params: unknown[] } {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SCAN_PAGE) {
    throw new RangeError(`limit must be an integer from 1 to ${MAX_SCAN_PAGE}`);
  }
  const { where, params } = selectionWhere(q);
  if (after) {
    where.push('(created, id) < (?::timestamptz, ?)');
    params.push(after.created, after.id);
  }
  return orderedRange({ text: `id, ${CREATED_KEY}`, params: [] }, { where, params }, q.includeArchived === true, 'desc', limit);
}

/** A run view row as the public `FlowRun`. */
function toFlowRun(r: RunRow): FlowRun {
  return {
    id: r.id,
    projectId: r.project_id,
    flowId: r.flow_id,
    flowVersionId: r.flow_version_id,
    flowVersion: { displayName: r.flow_display_name },
    status: r.status,
    startTime: r.start_time_iso,
    finishTime: r.finish_time_iso,
    environment: r.environment,
    triggeredBy: r.triggered_by,
    tags: r.tags,
    stepsCount: r.steps_count,
    failedStepName: r.failed_step_name,
    parentRunId: r.parent_run_id,
    retryOf: r.retry_of,
    attempt: r.attempt,
    pause:
      r.pause_request_id !== null && r.pause_step_name !== null
        ? { requestId: r.pause_request_id, stepName: r.pause_step_name }
        : null,
    archivedAt: r.archived_at_iso,
    executionDataPurgedAt: r.purged_at_iso,
    created: r.created_iso,
  };
}

const cursorAt = (r: RunRow, direction: Cursor['direction']): string =>
  encodeCursor({ created: r.created_key, id: r.id, direction });

/**
 * The query side over the read model (`run_views`, `step_views`, built by the projector), plus
 * the claim-checked payloads in the execution-data store for a single run's detail.
 * Stateless: construct one per request around that request's entity-manager fork.
 */
export class RunViews {
  private readonly executionData: ExecutionDataStore;

  constructor(private readonly sql: SqlRunner) {
    this.executionData = new ExecutionDataStore(sql);
  }

  /**
   * One page of a project's runs, newest first (`created desc, id desc`), with exact keyset
   * cursors: following `next` then `previous` returns exactly the pages seen before.
   */
  async listRuns(q: ListRunsQuery): Promise<RunPage> {
    const { sql, params, cursor } = buildListQuery(q);
    const rows = await this.sql.execute<RunRow>(sql, params);
    const more = rows.length > q.limit;
    const page = more ? rows.slice(0, q.limit) : rows;
    // A backwards page was read in ascending order; present it in list order.
    if (cursor?.direction === 'previous') page.reverse();

    const first = page[0];
    const last = page[page.length - 1];
    let next: string | null;
    let previous: string | null;
    if (!cursor) {
      next = more ? cursorAt(last, 'next') : null;
      previous = null;
    } else if (cursor.direction === 'next') {
      // Came forward from a boundary, so there is something before this page: the boundary row.
      next = more ? cursorAt(last, 'next') : null;
      previous = first ? cursorAt(first, 'previous') : flip(cursor);
    } else {
      // Came back from a boundary, so there is something after this page: the boundary row.
      previous = more ? cursorAt(first, 'previous') : null;
      next = last ? cursorAt(last, 'next') : flip(cursor);
    }
    return { data: page.map(toFlowRun), next, previous };
  }

  /**
   * One page of a bulk scan (see `buildIdScanQuery`): the ids, and the key to continue after, or
   * null when this page was the last (it held fewer than `limit` runs).
   */
  async scanRunIds(q: RunSelection, after: RunKey | null, limit: number): Promise<{ ids: string[]; next: RunKey | null }> {
    const { sql, params } = buildIdScanQuery(q, after, limit);
    const rows = await this.sql.execute<{ id: string; created_key: string }>(sql, params);
    const last = rows[rows.length - 1];
    return { ids: rows.map((r) => r.id), next: rows.length === limit ? { created: last.created_key, id: last.id } : null };
  }

  /**
   * Every selected run's id, one page of `pageSize` at a time, newest first; the next page is read
   * only when the caller asks for it, so memory stays at one page however many runs match. Runs
   * created after the first page was read are not visited (they sort before the boundary), so the
   * scan ends even while new runs arrive; a run whose status changes meanwhile keeps its place.
   */
  async *runIdPages(q: RunSelection, pageSize: number): AsyncGenerator<string[], void, undefined> {
    let after: RunKey | null = null;
    do {
      const page: { ids: string[]; next: RunKey | null } = await this.scanRunIds(q, after, pageSize);
      if (page.ids.length) yield page.ids;
      after = page.next;
    } while (after);
  }

  /**
   * A run with its steps, or null when it does not exist in this project (another project's run
   * is indistinguishable from a missing one). `steps` is keyed by step name in position order,
   * after a `trigger` entry carrying the trigger payload; the payloads of all steps come from the
   * execution-data store in one query. Once the run's execution data was purged, `steps` is `{}`
   * and `logsFileId` null: step results are execution data, and only run metadata survives.
   */
  async getRun(projectId: string, id: string): Promise<FlowRunWithSteps | null> {
    return (await this.getRuns(projectId, [id]))[0] ?? null;
  }

  /**
   * Several runs with their steps (as `getRun`), in the order of `ids`, in three queries whatever
   * their number: the runs, their steps, their payloads. Ids that are not this project's runs are
   * left out. For pages of an export.
   */
  async getRuns(projectId: string, ids: readonly string[]): Promise<FlowRunWithSteps[]> {
    if (ids.length === 0) return [];
    const runs = await this.sql.execute<RunDetailRow>(
      `select ${LIST_COLUMNS}, logs_file_id, trigger_data_ref from run_views where id in (?) and project_id = ?`,
      [projectId, [...ids], projectId],
    );
    const withData = runs.filter((r) => r.purged_at_iso === null);
    const steps = withData.length
      ? await this.sql.execute<StepRow & { run_id: string }>(
          `select run_id, step_name, step_type, status, attempt, duration_ms, data_ref
             from step_views where run_id in (?) order by run_id, position, step_name`,
          [withData.map((r) => r.id)],
        )
      : [];
    const refs = [
      ...steps.flatMap((s) => (s.data_ref ? [s.data_ref] : [])),
      ...withData.flatMap((r) => (r.trigger_data_ref ? [r.trigger_data_ref] : [])),
    ];
    const data = await this.executionData.getMany(refs);
    const stepsOf = new Map<string, StepRow[]>();
    for (const s of steps) stepsOf.set(s.run_id, [...(stepsOf.get(s.run_id) ?? []), s]);

    const byId = new Map(
      runs.map((run): [string, FlowRunWithSteps] => {
        const base = toFlowRun(run);
        if (run.purged_at_iso !== null) return [run.id, { ...base, steps: {}, logsFileId: null }];
        const runSteps = stepsOf.get(run.id) ?? [];
        const out: Record<string, StepResult> = {};
        // A flow step that is itself named "trigger" keeps its name; the trigger entry yields to it.
        const triggerRecord = run.trigger_data_ref ? data.get(run.trigger_data_ref) : undefined;
        if (triggerRecord && !runSteps.some((s) => s.step_name === TRIGGER_STEP_NAME)) {
          out[TRIGGER_STEP_NAME] = { type: 'TRIGGER', output: triggerRecord.output };
        }
        for (const s of runSteps) {
          const record = s.data_ref ? data.get(s.data_ref) : undefined;
          out[s.step_name] = compact({
            type: s.step_type,
            status: s.status,
            input: record?.input,
            output: record?.output,
            error: record?.error,
            duration: s.duration_ms ?? undefined,
            attempt: s.attempt,
          });
        }
        return [run.id, { ...base, steps: out, logsFileId: run.logs_file_id }];
      }),
    );
    return ids.flatMap((id) => byId.get(id) ?? []);
  }
}

/** The same boundary, opening the other way (for an empty page reached through a cursor). */
const flip = (c: Cursor): string =>
  encodeCursor({ ...c, direction: c.direction === 'next' ? 'previous' : 'next' });

/** Drops undefined fields so a step without data shows only what is known. */
function compact(step: StepResult): StepResult {
  return Object.fromEntries(Object.entries(step).filter(([, v]) => v !== undefined)) as StepResult;
}
