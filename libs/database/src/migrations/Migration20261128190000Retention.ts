import { Migration } from '@mikro-orm/migrations';

/**
 * Retention needs to find, cheaply and in order, the finished runs whose execution data is still
 * there: `run_streams.finished_at` (when the run last entered a terminal status; null while it
 * runs, is paused, or after a retry from the failed step) and `purged_at` (when its data went),
 * both written from the snapshot on every append, and a partial index over exactly the candidates.
 * Existing rows are backfilled from the event log. `projects.retention_days` (already there) is the
 * per-project override of `AP_EXECUTION_DATA_RETENTION_DAYS`.
 */
export class Migration20261128190000Retention extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      alter table run_streams
        add column finished_at timestamptz null,
        add column purged_at timestamptz null;

      update run_streams s set finished_at = (
        select max(e.created_at) from run_events e
        where e.run_id = s.run_id and e.type in ('flowrun.succeeded.v1', 'flowrun.failed.v1', 'flowrun.stopped.v1',
          'flowrun.timed-out.v1', 'flowrun.quota-exceeded.v1', 'flowrun.internal-error.v1')
      )
      where s.status in ('SUCCEEDED', 'FAILED', 'STOPPED', 'TIMEOUT', 'QUOTA_EXCEEDED', 'INTERNAL_ERROR');

      update run_streams s set purged_at = (
        select max(e.created_at) from run_events e where e.run_id = s.run_id and e.type = 'flowrun.execution-data-purged.v1'
      )
      where (s.state->>'purged')::boolean;

      alter table projects add constraint projects_retention_days_positive check (retention_days is null or retention_days > 0);

      create index run_streams_retention_idx on run_streams (finished_at) where finished_at is not null and purged_at is null;
    `);
  }

  override async down(): Promise<void> {
    this.addSql(`
      drop index if exists run_streams_retention_idx;
      alter table projects drop constraint if exists projects_retention_days_positive;
      alter table run_streams drop column if exists finished_at, drop column if exists purged_at;
    `);
  }
}
