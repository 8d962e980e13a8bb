import { Migration } from '@mikro-orm/migrations';

/**
 * Retention purges ranges of a project's runs instead of one run at a time (`purgeExpiredBatch`,
 * `docs/architecture.md`, "Retention, export, erase").
 *
 * - `retention_marks` (write model): per project, the finish key (`finished_at`, then run id)
 *   through which every run's execution data is gone. A run's stream no longer records a retention
 *   purge; the command service reads the mark when it decides on a finished run.
 * - `run_view_purge_ranges` (read model): one row per `flowrun.execution-data-purged-through.v1`,
 *   the key range it covered and when. A run view whose finish key falls in a range reads as purged
 *   at that range's time.
 * - The candidates' index becomes per project (`project_id, finished_at, run_id`): a batch walks
 *   one project's finished runs from its mark. The old index held only unpurged runs, which a range
 *   purge no longer marks one by one.
 */
export class Migration20261202000000RetentionRanges extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table if not exists retention_marks (
        project_id text primary key,
        finished_at timestamptz not null,
        run_id text not null,
        updated_at timestamptz not null default now()
      );
      create table if not exists run_view_purge_ranges (
        project_id text not null,
        through_finished_at timestamptz not null,
        through_run_id text not null,
        from_finished_at timestamptz null,
        from_run_id text null,
        runs integer not null,
        purged_at timestamptz not null,
        primary key (project_id, through_finished_at, through_run_id)
      );
      create index if not exists run_streams_retention_project_idx on run_streams (project_id, finished_at, run_id) where finished_at is not null;
      drop index if exists run_streams_retention_key_idx;
    `);
  }

  override async down(): Promise<void> {
    this.addSql(`
      create index if not exists run_streams_retention_key_idx on run_streams (finished_at, run_id) where finished_at is not null and purged_at is null;
      drop index if exists run_streams_retention_project_idx;
      drop table if exists run_view_purge_ranges, retention_marks;
    `);
  }
}
