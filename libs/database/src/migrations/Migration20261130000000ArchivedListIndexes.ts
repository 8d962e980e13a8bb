import { Migration } from '@mikro-orm/migrations';

/**
 * The list's btree indexes split by archive state: beside the ones over the unarchived runs
 * (`where archived_at is null`, Migration20261129210000ActiveListIndexes), the same three over the
 * archived runs (`where archived_at is not null`) replace the whole ones. Every run has an entry
 * in one set, so `includeArchived=true` reads the same range of both and merges them (at most
 * `limit + 1` rows from each: `buildListQuery`), still an index range for any flow or status filter.
 *
 * Why: an update that is not heap-only (any status change; the status is a key) adds an entry to
 * every index whose predicate the new row satisfies. With the whole indexes beside the partial
 * ones that was six list entries per change, now three. Measured on 50 000 bulk-loaded views,
 * batches of 100 status changes: 32 µs per row with the whole indexes, 23 without.
 *
 * Each `create index` reads run_views once under a SHARE lock (reads go on, the projector's writes
 * wait). On a large table an operator may build them first with `create index concurrently` under
 * these names: the migration then only drops the whole ones.
 */
export class Migration20261130000000ArchivedListIndexes extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create index if not exists run_views_archived_created_idx on run_views (project_id, created desc, id desc) where archived_at is not null;
      create index if not exists run_views_archived_flow_created_idx on run_views (project_id, flow_id, created desc, id desc) where archived_at is not null;
      create index if not exists run_views_archived_status_created_idx on run_views (project_id, status, created desc, id desc) where archived_at is not null;
      drop index run_views_project_created_idx;
      drop index run_views_project_flow_created_idx;
      drop index run_views_project_status_created_idx;
    `);
  }

  override async down(): Promise<void> {
    this.addSql(`
      create index run_views_project_created_idx on run_views (project_id, created desc, id desc);
      create index run_views_project_flow_created_idx on run_views (project_id, flow_id, created desc, id desc);
      create index run_views_project_status_created_idx on run_views (project_id, status, created desc, id desc);
      drop index run_views_archived_created_idx;
      drop index run_views_archived_flow_created_idx;
      drop index run_views_archived_status_created_idx;
    `);
  }
}
