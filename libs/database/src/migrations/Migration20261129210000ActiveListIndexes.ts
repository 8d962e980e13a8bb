import { Migration } from '@mikro-orm/migrations';

/**
 * The list leaves archived runs out unless `includeArchived=true`, and the reference tells users
 * to archive old runs "to improve query performance". With `archived_at` in no index, the opposite
 * held: every archived run in the way was read from the heap and thrown away, so with the newest
 * 100 000 runs of a project archived, its first page read 100 000 rows (31 ms instead of 0.1).
 * The list's btree indexes now hold only the runs a default list can show (`where archived_at is
 * null`): archived runs cost a default list nothing. `run_views_project_created_idx` stays whole
 * for `includeArchived=true` (and the bulk operations' selection with it), where a flow or status
 * filter is checked row by row along it; the GIN index on tags stays whole too.
 *
 * The price: an archive now changes a column an index predicate reads, so it is no longer a
 * heap-only update (it adds an entry to the whole indexes: primary key, created, tags).
 */
export class Migration20261129210000ActiveListIndexes extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create index run_views_active_created_idx on run_views (project_id, created desc, id desc) where archived_at is null;
      create index run_views_active_flow_created_idx on run_views (project_id, flow_id, created desc, id desc) where archived_at is null;
      create index run_views_active_status_created_idx on run_views (project_id, status, created desc, id desc) where archived_at is null;
      drop index run_views_project_flow_created_idx;
      drop index run_views_project_status_created_idx;
    `);
  }

  override async down(): Promise<void> {
    this.addSql(`
      create index run_views_project_flow_created_idx on run_views (project_id, flow_id, created desc, id desc);
      create index run_views_project_status_created_idx on run_views (project_id, status, created desc, id desc);
      drop index run_views_active_created_idx;
      drop index run_views_active_flow_created_idx;
      drop index run_views_active_status_created_idx;
    `);
  }
}
