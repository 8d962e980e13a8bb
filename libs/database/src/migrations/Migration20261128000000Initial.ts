import { Migration } from '@mikro-orm/migrations';

/**
 * The first schema. Write model (command service): flows, flow versions, run streams, the run
 * event log (which is also the outbox), execution data (claim-checked payloads), API keys.
 * Read model (projector): run views and step views.
 */
export class Migration20261128000000Initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table projects (
        id text primary key,
        monthly_run_quota integer null,
        retention_days integer null,
        created_at timestamptz not null default now()
      );

      create table api_keys (
        id text primary key,
        project_id text not null,
        key_hash bytea not null unique,
        key_prefix text not null,
        created_at timestamptz not null default now(),
        revoked_at timestamptz null
      );
      create index api_keys_project_idx on api_keys (project_id);

      create table flows (
        id text primary key,
        project_id text not null,
        display_name text not null,
        tags text[] not null default '{}',
        latest_version_id text null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );
      create index flows_project_idx on flows (project_id, created_at desc, id desc);

      create table flow_versions (
        id text primary key,
        flow_id text not null references flows (id),
        version integer not null,
        display_name text not null,
        steps jsonb not null,
        created_at timestamptz not null default now(),
        unique (flow_id, version)
      );

      create table run_streams (
        run_id text primary key,
        project_id text not null,
        flow_id text not null,
        version integer not null,
        state jsonb not null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );

      -- The event log is the source of truth and the outbox: rows are appended in the command's
      -- transaction and published by the relay in position order; published_at marks its progress.
      create table run_events (
        position bigserial primary key,
        event_id text not null unique,
        run_id text not null,
        seq integer not null,
        type text not null,
        envelope jsonb not null,
        traceparent text null,
        created_at timestamptz not null default now(),
        published_at timestamptz null,
        unique (run_id, seq)
      );
      create index run_events_unpublished_idx on run_events (position) where published_at is null;

      create table execution_data (
        ref text primary key,
        run_id text not null,
        kind text not null,
        step_name text null,
        attempt integer null,
        input jsonb null,
        output jsonb null,
        error jsonb null,
        bytes integer not null,
        created_at timestamptz not null default now()
      );
      create index execution_data_run_idx on execution_data (run_id);

      create table run_views (
        id text primary key,
        project_id text not null,
        flow_id text not null,
        flow_version_id text not null,
        flow_display_name text not null,
        status text not null,
        environment text not null,
        triggered_by text null,
        tags text[] not null default '{}',
        steps_count integer not null,
        parent_run_id text null,
        fail_parent_on_failure boolean not null default false,
        retry_of text null,
        failed_step_name text null,
        attempt integer not null,
        start_time timestamptz null,
        finish_time timestamptz null,
        archived_at timestamptz null,
        purged_at timestamptz null,
        logs_file_id text null,
        trigger_data_ref text null,
        pause_request_id text null,
        pause_step_name text null,
        created timestamptz not null,
        version integer not null,
        updated_at timestamptz not null default now()
      );
      -- Keyset pagination on (created, id) per project; archived runs are left out by default.
      create index run_views_project_created_idx on run_views (project_id, created desc, id desc);
      create index run_views_project_flow_created_idx on run_views (project_id, flow_id, created desc, id desc);
      create index run_views_project_status_created_idx on run_views (project_id, status, created desc, id desc);
      create index run_views_tags_idx on run_views using gin (tags);
      create index run_views_parent_idx on run_views (parent_run_id) where parent_run_id is not null;

      create table step_views (
        run_id text not null,
        step_name text not null,
        step_type text not null,
        status text not null,
        attempt integer not null,
        position integer not null,
        duration_ms integer null,
        data_ref text null,
        started_at timestamptz null,
        finished_at timestamptz null,
        primary key (run_id, step_name)
      );

      -- A run whose events arrived with a gap: its projection stopped, loudly, until a rebuild.
      create table projection_stalls (
        run_id text primary key,
        expected_seq integer not null,
        received_seq integer not null,
        event_id text not null,
        detected_at timestamptz not null default now()
      );
    `);
  }

  override async down(): Promise<void> {
    this.addSql(`
      drop table if exists projection_stalls, step_views, run_views, execution_data, run_events,
        run_streams, flow_versions, flows, api_keys, projects cascade;
    `);
  }
}
