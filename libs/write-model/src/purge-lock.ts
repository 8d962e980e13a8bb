import type { Write } from './run-store';
import type { SqlRunner } from './sql';

/**
 * The advisory lock class of a project's purge (`class, hashtext(project id)`). Retention's batch
 * takes a project's lock exclusively: tried, then waited for briefly (`awaitPurgeLock` in
 * retention.ts: a project held past that is passed over); the commands whose outcome a purge changes hold it shared: retries and
 * erases first of all (`holdAgainstPurge`), and every append that finishes a run
 * (`holdFinishingProjectsSql`).
 */
export const PURGE_LOCK_CLASS = 7_260_401;

/**
 * SQL: whether the run whose finish key is (`finishedAt`, `runId`) lies at or behind the retention
 * mark `mark` (the alias of a `retention_marks` row): a range purged it. The one definition of
 * "covered" for every reader of the marks (`withRetentionRanges`, `purgeFinishedBehindMarks`,
 * `retentionPlan`), so they cannot drift apart; each operand is an SQL expression.
 */
export const behindMarkSql = (finishedAt: string, runId: string, mark: string): string =>
  `(${finishedAt}, ${runId}) <= (${mark}.finished_at, ${mark}.run_id)`;

/**
 * Holds `projectId` against retention's purge until the caller's transaction ends: a shared hold
 * of its purge lock, so commands do not wait on each other, a purge batch (whose lock is
 * exclusive) waits briefly and then passes the project over while one is held, and a command that
 * comes during a batch (or while a batch waits for the project) waits for it. Taken by the commands whose outcome depends on a finished run's execution data —
 * retries (both strategies) and erases —, which is what lets a purge batch leave its runs unlocked.
 *
 * Taken before the command reads its runs, in a statement of its own: the command's next
 * statements see what a batch it waited for committed (the mark).
 */
export async function holdAgainstPurge(sql: SqlRunner, projectId: string): Promise<void> {
  await sql.execute(`select pg_advisory_xact_lock_shared(${PURGE_LOCK_CLASS}, hashtext(?))::text as held`, [projectId]);
}

/**
 * A statement that holds the projects of runs this transaction finishes against their purge, until
 * it ends (shared: finishes never wait on each other). Why: a run's finish key (`finished_at`, then
 * id) is its command's clock, fixed before its transaction commits, so a range could otherwise
 * pass over a finish in flight — its key behind the project's new mark, its data left. Held, a
 * batch passes the project over while a finish is in flight, and a finish that comes during a batch
 * waits for it; then `purgeFinishedBehindMarks`, a later statement, sees the batch's mark.
 *
 * A batch waits on no lock a finish holds (it takes its range's last run `skip locked`), so a
 * finish may take this after its rows' locks.
 */
export function holdFinishingProjectsSql(projectIds: readonly string[]): Write {
  return {
    text: `select count(pg_advisory_xact_lock_shared(${PURGE_LOCK_CLASS}, hashtext(p))::text)::int as held from unnest(array[?]::text[]) as p`,
    params: [[...new Set(projectIds)].sort()],
  };
}

/**
 * Deletes the execution data of the runs this transaction just finished (`runIds`, of `projectIds`,
 * pairwise) whose finish key — `finishedAt`, the append's instant, then the run id — is at or before
 * their project's retention mark: purged by that range, as a run that finished before the batch ran
 * is (and as the views and `withRetentionRanges` answer it). A statement after the one that took
 * `holdFinishingProjectsSql`, so it reads the mark of the last batch to commit, and no batch moves
 * it before this transaction ends. One probe of `retention_marks` per project (almost always
 * nothing to delete: a run finished behind its project's window).
 */
export async function purgeFinishedBehindMarks(
  sql: SqlRunner,
  runIds: readonly string[],
  projectIds: readonly string[],
  finishedAt: Date,
): Promise<void> {
  await sql.execute(
    `delete from execution_data where run_id in (
       select f.run_id from unnest(array[?]::text[], array[?]::text[]) as f (run_id, project_id)
       join retention_marks m on m.project_id = f.project_id
       where ${behindMarkSql('?::timestamptz', 'f.run_id', 'm')})`,
    [runIds, projectIds, finishedAt],
  );
}
