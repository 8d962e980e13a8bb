import { Migration } from '@mikro-orm/migrations';

/**
 * Bulk run control pages through one project's runs in the write model by run id (keyset: a run id
 * is a UUIDv7, so id order is creation order). Without this index every page would sort the
 * project's runs again.
 */
export class Migration20261128180000BulkSelection extends Migration {
  override async up(): Promise<void> {
    this.addSql('create index run_streams_project_run_idx on run_streams (project_id, run_id);');
  }

  override async down(): Promise<void> {
    this.addSql('drop index if exists run_streams_project_run_idx;');
  }
}
