import { Migration } from '@mikro-orm/migrations';

/**
 * The list leaves archived runs out unless `includeArchived=true`, and the reference tells users
 * to archive old runs "to improve query performance". With `archived_at` in no index, the opposite
 * held: every archived run in the way was read from the heap and thrown away, so with the newest
 * 100 000 runs of a project archived, its first page read 100 000 rows (31 ms instead of 0.1).
 * The default list now has btree indexes over the unarchived runs only (`where archived_at is
 * null`: created; flow, created; status, created): archived runs cost it nothing. The whole
 * indexes stay for `includeArchived=true`, so a flow or status filter there is still an index
 * range, not a filter along every run. (That the extra entries cost little was wrong: a status
 * change, never heap-only, adds an entry to each of them — 32 against 23 µs per row;
 * Migration20261130000000ArchivedListIndexes replaces the whole ones by indexes of the archived runs.)
 *
 * An archive now changes a column the partial indexes' predicate reads, so it is no longer a
 * heap-only update either (it adds entries to the whole indexes).
 */
export class Migration20261129210000ActiveListIndexes extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create index run_views_active_created_idx on run_views (project_id, created desc, id desc) where archived_at is null;
      create index run_views_active_flow_created_idx on run_views (project_id, flow_id, created desc, id desc) where archived_at is null;
      create index run_views_active_status_created_idx on run_views (project_id, status, created desc, id desc) where archived_at is null;
    `);
  }

  override async down(): Promise<void> {
    this.addSql(`
      drop index run_views_active_created_idx;
      drop index run_views_active_flow_created_idx;
      drop index run_views_active_status_created_idx;
    `);
  }
}
