import { isDomainError, type DomainError } from '@flowruns/contracts';
import { ExecutionDataStore } from '@flowruns/execution-data';
import { appendToLockedRuns, appendToRuns, type AppendOptions, type AppendResult, type StreamRow } from './run-store';
import type { SqlRunner } from './sql';

/** `AP_EXECUTION_DATA_RETENTION_DAYS`, overridable per project (`projects.retention_days`). */
export interface RetentionWindow {
  /** The instant the windows are measured back from (now, or a future date an operator asks about). */
  readonly now: Date;
  readonly defaultDays: number;
}

export interface PurgeOutcome {
  /** Runs whose execution data went (one `execution-data purged` event each). */
  readonly runs: number;
  readonly records: number;
  readonly bytes: number;
}

/**
 * Where a batch of a purge pass ended, in the candidates' order (finish, then run id): the pass's
 * next batch starts after it. `finishedAt` carries Postgres's microseconds (ISO 8601, UTC).
 */
export interface PurgeCursor {
  readonly finishedAt: string;
  readonly runId: string;
}

/** A purge batch's outcome, and where it ended (null: it took no run). */
export interface PurgeBatchOutcome extends PurgeOutcome {
  readonly last: PurgeCursor | null;
}

/**
 * The runs whose execution data has expired at `window.now`: finished (`finished_at`, kept while a
 * run stays finished; RUNNING and PAUSED runs have none) longer ago than their project's window,
 * not purged yet. The outer bound on `finished_at` (the shortest window of any project) lets the
 * partial index `run_streams_retention_key_idx` do the work.
 */
async function expiredSelection(sql: SqlRunner, window: RetentionWindow): Promise<{ where: string; params: unknown[] }> {
  const [{ min_days }] = await sql.execute<{ min_days: number | null }>('select min(retention_days) as min_days from projects');
  const shortest = Math.min(window.defaultDays, min_days ?? window.defaultDays);
  return {
    where: `s.finished_at is not null and s.purged_at is null
      and s.finished_at < ?::timestamptz
      and s.finished_at < ?::timestamptz - make_interval(days => coalesce(p.retention_days, ?))`,
    params: [new Date(window.now.getTime() - shortest * 86_400_000), window.now, window.defaultDays],
  };
}

/**
 * Purges one batch of expired runs, in the caller's transaction: locks up to `limit` of them
 * (oldest finish first, then by run id; `skip locked`, so concurrent purgers take different runs
 * and never wait on each other), deletes their execution data, and appends `PurgeExecutionData` to
 * each. The data and the events go together or not at all: a crash mid-batch leaves the batch as
 * it was.
 *
 * `after` (the previous batch's `last`) starts the batch where the previous one ended, so a pass
 * reads each index entry once: without it every batch would read from the index's head through
 * everything it has no use for — runs of projects with a longer window, and the entries of runs
 * purged since the last vacuum. A pass measures every batch against the same `window.now`, so a
 * run passed over stays unexpired for it; one skipped because another transaction held it is left
 * to the next pass.
 */
export async function purgeExpiredBatch(
  sql: SqlRunner,
  window: RetentionWindow,
  limit: number,
  opts: AppendOptions,
  after: PurgeCursor | null = null,
): Promise<PurgeBatchOutcome> {
  const { where, params } = await expiredSelection(sql, window);
  const keyset = after ? ' and (s.finished_at, s.run_id) > (?::timestamptz, ?)' : '';
  // The rows the append needs, read and locked by the statement that picks them (no second lookup).
  const rows = await sql.execute<StreamRow & { finished_key: string }>(
    `select s.run_id, s.project_id, s.flow_id, s.version, s.state,
       to_char(s.finished_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as finished_key
     from run_streams s left join projects p on p.id = s.project_id
     where ${where}${keyset}
     order by s.finished_at, s.run_id
     limit ?
     for update of s skip locked`,
    [...params, ...(after ? [after.finishedAt, after.runId] : []), limit],
  );
  const results = await appendToLockedRuns(sql, rows, () => ({ type: 'PurgeExecutionData', reason: 'RETENTION' }), opts);
  const end = rows[rows.length - 1];
  const { outcome } = await deleteDataOfPurged(sql, results);
  return { ...outcome, last: end ? { finishedAt: end.finished_key, runId: end.run_id } : null };
}

/** What a purge at `window.now` would take: runs and bytes, without changing anything. */
export async function retentionPlan(sql: SqlRunner, window: RetentionWindow): Promise<{ runs: number; bytes: number }> {
  const { where, params } = await expiredSelection(sql, window);
  const [row] = await sql.execute<{ runs: number; bytes: number }>(
    `with expired as (
       select s.run_id from run_streams s left join projects p on p.id = s.project_id where ${where}
     )
     select (select count(*)::int from expired) as runs,
       (select coalesce(sum(d.bytes), 0)::float8 from execution_data d where d.run_id in (select run_id from expired)) as bytes`,
    params,
  );
  return row;
}

/**
 * Records the purge of each run (`PurgeExecutionData`: the decider refuses a run that has not
 * finished, and a run purged already appends nothing), then deletes the execution data of the runs
 * that recorded it, all in the caller's transaction. Runs of another project (with
 * `opts.projectId`) and unknown runs are left out of `results`.
 */
export async function purgeRuns(
  sql: SqlRunner,
  runIds: readonly string[],
  reason: 'RETENTION' | 'ERASE',
  opts: AppendOptions,
): Promise<{ outcome: PurgeOutcome; results: (AppendResult | DomainError)[] }> {
  if (runIds.length === 0) return { outcome: { runs: 0, records: 0, bytes: 0 }, results: [] };
  return deleteDataOfPurged(sql, await appendToRuns(sql, runIds, () => ({ type: 'PurgeExecutionData', reason }), opts));
}

/** Deletes the execution data of the runs that recorded their purge (an already purged run has none left). */
async function deleteDataOfPurged(
  sql: SqlRunner,
  results: (AppendResult | DomainError)[],
): Promise<{ outcome: PurgeOutcome; results: (AppendResult | DomainError)[] }> {
  const purged = results.filter((r): r is AppendResult => !isDomainError(r) && r.events.length > 0).map((r) => r.runId);
  const { records, bytes } = await new ExecutionDataStore(sql).purgeRuns(purged);
  return { outcome: { runs: purged.length, records, bytes }, results };
}
