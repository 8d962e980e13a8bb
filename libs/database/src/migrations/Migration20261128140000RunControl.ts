import { Migration } from '@mikro-orm/migrations';

/**
 * Run control (command service): what the supervisor, the stop cascade, quotas and engine leases
 * need to find runs from the write side without reading the views.
 *
 * - `run_streams` gets the columns the decisions' neighbours query: `status`, `parent_run_id`
 *   (descendants of a stopped run), `running_since` (when the run last entered RUNNING: execution
 *   timeouts and orphans) and `resume_deadline` (paused runs past it). They are written from the
 *   snapshot on every append; existing rows are backfilled from the snapshot and the event log.
 * - `run_leases`: which engine executes a RUNNING run, until when (fencing of its reports).
 */
export class Migration20261128140000RunControl extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      alter table run_streams
        add column status text null,
        add column parent_run_id text null,
        add column running_since timestamptz null,
        add column resume_deadline timestamptz null;

      update run_streams s set
        status = s.state->>'status',
        running_since = coalesce((s.state->>'runningSince')::timestamptz, (s.state->>'startTime')::timestamptz, s.created_at),
        parent_run_id = e.envelope->'data'->>'parentRunId'
      from run_events e
      where e.run_id = s.run_id and e.seq = 1;

      -- Snapshots written before the deadline was kept in them: take it from the last pause event.
      update run_streams s set resume_deadline = (
        select (e.envelope->'data'->>'resumeDeadline')::timestamptz
        from run_events e
        where e.run_id = s.run_id and e.type = 'flowrun.paused.v1'
        order by e.seq desc
        limit 1
      )
      where s.status = 'PAUSED';
      update run_streams set state = jsonb_set(state, '{pause,resumeDeadline}', to_jsonb(resume_deadline))
      where status = 'PAUSED' and resume_deadline is not null and state->'pause' is not null
        and state->'pause'->'resumeDeadline' is null;

      -- Monthly quota: runs of a project created since a date.
      create index run_streams_project_created_idx on run_streams (project_id, created_at);
      -- Stop cascade: the children of a run.
      create index run_streams_parent_idx on run_streams (parent_run_id) where parent_run_id is not null;
      -- Supervisor: running too long / without a worker; paused past the deadline.
      create index run_streams_running_idx on run_streams (running_since) where status = 'RUNNING';
      create index run_streams_paused_deadline_idx on run_streams (resume_deadline) where status = 'PAUSED';

      create table run_leases (
        run_id text primary key,
        worker_id text not null,
        expires_at timestamptz not null,
        acquired_at timestamptz not null
      );
      create index run_leases_expires_idx on run_leases (expires_at);
    `);
  }

  override async down(): Promise<void> {
    this.addSql(`
      drop table if exists run_leases;
      drop index if exists run_streams_project_created_idx, run_streams_parent_idx, run_streams_running_idx,
        run_streams_paused_deadline_idx;
      alter table run_streams
        drop column if exists status,
        drop column if exists parent_run_id,
        drop column if exists running_since,
        drop column if exists resume_deadline;
    `);
  }
}
