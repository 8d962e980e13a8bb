import { isDomainError, type DomainError } from '@flowruns/contracts';
import { isoMicrosSql } from '@flowruns/database';
import { ExecutionDataStore } from '@flowruns/execution-data';
import { behindMarkSql, PURGE_LOCK_CLASS } from './purge-lock';
import { appendToRuns, type AppendOptions, type AppendResult } from './run-store';
import { hasSqlState, type SqlRunner } from './sql';

/** `AP_EXECUTION_DATA_RETENTION_DAYS`, overridable per project (`projects.retention_days`). */
export interface RetentionWindow {
  /** The instant the windows are measured back from (now, or a future date an operator asks about). */
  readonly now: Date;
  readonly defaultDays: number;
}

export interface PurgeOutcome {
  /** Runs whose execution data went. */
  readonly runs: number;
  readonly records: number;
  readonly bytes: number;
}

/**
 * Where a purge pass stands: the project its last batch purged in. A batch takes projects in id
 * order from there; within a project, the project's mark (`retention_marks`) says where it stands.
 */
export interface PurgeCursor {
  readonly projectId: string;
}

/** A purge batch's outcome, and where it ended (null: it took no run). */
export interface PurgeBatchOutcome extends PurgeOutcome {
  readonly last: PurgeCursor | null;
}

/** Where a project's window starts: `?` (the window's `now`) less its `retentionDays`, or the default (`?`). */
const windowStart = (retentionDays: string) => `?::timestamptz - make_interval(days => coalesce(${retentionDays}, ?))`;


/**
 * The next project at or after `from` (after it, with `exclusive`) that has finished runs, through
 * the candidates' index (`run_streams_retention_project_idx`), and whether this transaction took
 * its purge lock: a project is purged by one transaction at a time, and not while a retry, an
 * erase or a finish holds it (`purge-lock.ts`). A batch that finds it taken waits a moment for it
 * (`awaitPurgeLock`), then goes on to the next project. (Two projects whose ids hash alike share a
 * lock: one's commands may pass the other over for the pass.)
 */
async function nextProject(sql: SqlRunner, from: string | null, exclusive: boolean): Promise<{ projectId: string; locked: boolean } | null> {
  const bound = from === null ? '' : exclusive ? ' and project_id > ?' : ' and project_id >= ?';
  const [row] = await sql.execute<{ project_id: string; locked: boolean }>(
    `select x.project_id, pg_try_advisory_xact_lock(${PURGE_LOCK_CLASS}, hashtext(x.project_id)) as locked
     from (select project_id from run_streams where finished_at is not null${bound} order by project_id limit 1) x`,
    from === null ? [] : [from],
  );
  return row ? { projectId: row.project_id, locked: row.locked } : null;
}

/**
 * How long a batch waits for the purge lock of a project its try found held, before passing it over.
 * Finishes hold it for a few milliseconds each; a retry's or an erase's transaction for as long as it
 * runs (a bulk retry: one page's).
 */
export const PURGE_LOCK_WAIT_MS = 250;

/**
 * Waits up to `PURGE_LOCK_WAIT_MS` for the purge lock of a project whose try found it held; whether
 * it was taken. Postgres queues lock requests fairly: while this exclusive request waits, a new
 * shared hold (a finish, a retry, an erase) waits behind it, so the batch gets the project as soon as
 * the holds already in place end. A try alone never got a project whose finishes overlap — held at
 * every instant, pass after pass, so its data was never purged. A hold that outlasts the wait (a bulk
 * retry's page) ends it at the timeout, and the project is passed over as before; the holds queued
 * behind the request meanwhile waited at most that long. In a savepoint: the timeout's error undoes
 * only the wait (and its `lock_timeout`), not the ranges the batch already purged.
 */
async function awaitPurgeLock(sql: SqlRunner, projectId: string): Promise<boolean> {
  await sql.execute('savepoint purge_lock_wait');
  const [{ before }] = await sql.execute<{ before: string }>(
    `with b as materialized (select current_setting('lock_timeout') as before)
     select before, set_config('lock_timeout', '${PURGE_LOCK_WAIT_MS}ms', true) as waiting from b`,
  );
  try {
    await sql.execute(`select pg_advisory_xact_lock(${PURGE_LOCK_CLASS}, hashtext(?))::text as held`, [projectId]);
  } catch (e) {
    // 55P03: refused at `lock_timeout`.
    if (!hasSqlState(e, '55P03')) throw e;
    await sql.execute('rollback to savepoint purge_lock_wait');
    return false;
  }
  // Released, the savepoint's lock stays the transaction's; the setting goes back to what it was.
  await sql.execute(`select set_config('lock_timeout', ?, true) as restored`, [before]);
  await sql.execute('release savepoint purge_lock_wait');
  return true;
}

/**
 * Purges the next expired runs of one project whose purge lock this transaction holds: up to
 * `limit` of them, oldest finish first from the project's mark, as one range — their execution
 * data deleted, the mark moved to the last one, and `flowrun.execution-data-purged-through.v1`
 * appended to the last one's stream, saying which range it closes. The runs themselves are neither
 * written nor locked, but for the last: the commands whose outcome depends on a finished run's data
 * (retries, erases) and those that finish a run hold the project against the purge
 * (`holdAgainstPurge`, `holdFinishingProjectsSql`), so while this transaction holds the project's
 * lock none of them is in flight, and one that comes waits for it, then sees the mark
 * (`withRetentionRanges`, `purgeFinishedBehindMarks`). Any other command on these runs (an archive)
 * does not care whether their data is there.
 *
 * The range's last run is locked `skip locked`: the latest run of the candidates no other
 * transaction holds ends the range (those after it wait for the next batch). A finish holds its
 * rows before it holds the project, so waiting here for a row could close a cycle.
 */
async function purgeProjectRange(
  sql: SqlRunner,
  projectId: string,
  window: RetentionWindow,
  limit: number,
  opts: AppendOptions,
): Promise<PurgeOutcome> {
  const none = { runs: 0, records: 0, bytes: 0 };
  // Read after the lock is held (a statement of its own), so the mark is the last holder's.
  const [mark] = await sql.execute<{ finished_key: string; run_id: string }>(
    `select ${isoMicrosSql('finished_at')} as finished_key, run_id from retention_marks where project_id = ?`,
    [projectId],
  );
  // One statement, so the range's run ids never travel to this process and back: the project's
  // next expired runs (finished before its window, after its mark: a bound no run is below when
  // there is none yet); of them the latest one no other transaction holds, locked — the range's
  // end; the records of the runs through it deleted and the mark moved to it. The bounds are a
  // CTE's columns read as scalar subqueries, so the scan keeps them in its index condition.
  // Data-modifying CTEs run once, to completion, whether or not the result reads them. The end is
  // found newest first, one stream row looked up (and locked) at a time until one is free: joining
  // the candidates to their rows first read every run's row (+40 % of the batch's Postgres CPU per
  // run, session 21). No row when no candidate is free (or there is none).
  const [range] = await sql.execute<{ run_id: string; finished_key: string; runs: number; records: number; bytes: number }>(
    `with bounds as materialized (
       select b.project_id,
         ${windowStart('(select retention_days from projects where id = b.project_id)')} as cutoff,
         ?::timestamptz as after_finished, ?::text as after_run
       from (select ?::text as project_id) b
     ), candidates as materialized (
       select s.run_id, s.finished_at from run_streams s
       where s.project_id = (select project_id from bounds) and s.finished_at is not null
         and s.finished_at < (select cutoff from bounds)
         and (s.finished_at, s.run_id) > ((select after_finished from bounds), (select after_run from bounds))
       order by s.finished_at, s.run_id limit ?
     ), through as materialized (
       select l.run_id, c.finished_at
       from (select run_id, finished_at from candidates order by finished_at desc, run_id desc) c
       cross join lateral (select s.run_id from run_streams s where s.run_id = c.run_id for update skip locked) l
       order by c.finished_at desc, c.run_id desc limit 1
     ), range as materialized (
       select c.run_id from candidates c where (c.finished_at, c.run_id) <= (select finished_at, run_id from through)
     ), gone as (
       ${ExecutionDataStore.deleteRunsSql('(select run_id from range)')}
     ), marked as (
       insert into retention_marks (project_id, finished_at, run_id, updated_at)
       select (select project_id from bounds), finished_at, run_id, ? from through
       on conflict (project_id) do update set finished_at = excluded.finished_at, run_id = excluded.run_id, updated_at = excluded.updated_at
     )
     select t.run_id, ${isoMicrosSql('t.finished_at')} as finished_key, (select count(*) from range)::int as runs,
       (select count(*) from gone)::int as records, (select coalesce(sum(bytes), 0) from gone)::float8 as bytes
     from through t`,
    [
      window.now,
      window.defaultDays,
      // Before every run (no mark yet): a finish no run has.
      mark ? mark.finished_key : '-infinity',
      mark ? mark.run_id : '',
      projectId,
      limit,
      opts.now,
    ],
  );
  if (!range) return none;
  const through = { run_id: range.run_id, finished_key: range.finished_key };
  const [result] = await appendToRuns(
    sql,
    [through.run_id],
    () => ({
      type: 'PurgeExecutionData',
      reason: 'RETENTION',
      range: {
        from: mark ? { finishedAt: mark.finished_key, runId: mark.run_id } : null,
        through: { finishedAt: through.finished_key, runId: through.run_id },
        runs: range.runs,
      },
    }),
    opts,
  );
  // The run is finished, and no retry can be in flight on it (the project's purge lock): the
  // decider cannot refuse it.
  if (!result || isDomainError(result)) throw new Error(`retention range through run ${through.run_id} was refused: ${JSON.stringify(result)}`);
  return { runs: range.runs, records: range.records, bytes: range.bytes };
}

/**
 * Purges one batch of expired runs, in the caller's transaction: the runs (finished longer ago
 * than their project's window) of the projects from `after`'s on, in id order, each project's
 * oldest finish first from its mark, until `limit` runs are taken or no project is left. Each
 * project's share is one range (`purgeProjectRange`): its runs' execution data deleted, its mark
 * moved, one event on the range's last run. The data, the marks and the events go together or not
 * at all: a crash mid-batch leaves the batch as it was.
 *
 * Concurrent batches take different projects, one after the other. A project another holds (a
 * batch, finishes, a retry, an erase) is waited for up to `PURGE_LOCK_WAIT_MS`, then passed over:
 * what a batch passes over is left to the next pass. A pass measures every batch against the same `window.now`.
 *
 * Why ranges (measured in `bench/notes.md`, session 14): an event per purged run cost ~0.2 ms of
 * CPU in all (its stream update and event, the relay, the projector's view update) and capped a
 * purge near 9 500 runs/s on two cores. A range writes per run only the deletion of its data.
 */
export async function purgeExpiredBatch(
  sql: SqlRunner,
  window: RetentionWindow,
  limit: number,
  opts: AppendOptions,
  after: PurgeCursor | null = null,
): Promise<PurgeBatchOutcome> {
  let runs = 0;
  let records = 0;
  let bytes = 0;
  let last: PurgeCursor | null = null;
  let from = after?.projectId ?? null;
  let exclusive = false;
  while (runs < limit) {
    const next = await nextProject(sql, from, exclusive);
    if (!next) break;
    from = next.projectId;
    exclusive = true;
    if (!next.locked && !(await awaitPurgeLock(sql, next.projectId))) continue;
    const outcome = await purgeProjectRange(sql, next.projectId, window, limit - runs, opts);
    if (outcome.runs === 0) continue;
    runs += outcome.runs;
    records += outcome.records;
    bytes += outcome.bytes;
    last = { projectId: next.projectId };
  }
  return { runs, records, bytes, last };
}

/** What a purge at `window.now` would take: runs and bytes, without changing anything. */
export async function retentionPlan(sql: SqlRunner, window: RetentionWindow): Promise<{ runs: number; bytes: number }> {
  const [row] = await sql.execute<{ runs: number; bytes: number }>(
    `with expired as (
       select s.run_id from run_streams s
       left join projects p on p.id = s.project_id
       left join retention_marks m on m.project_id = s.project_id
       where s.finished_at is not null
         and s.finished_at < ${windowStart('p.retention_days')}
         and (m.project_id is null or not ${behindMarkSql('s.finished_at', 's.run_id', 'm')})
     )
     select (select count(*)::int from expired) as runs,
       (select coalesce(sum(d.bytes), 0)::float8 from execution_data d where d.run_id in (select run_id from expired)) as bytes`,
    [window.now, window.defaultDays],
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
