import { Migration } from '@mikro-orm/migrations';

/**
 * One project index on `run_streams` instead of two: `(project_id, created_at, run_id)` replaces
 * `(project_id, created_at)` (a quota's count of the month's runs: still its prefix) and
 * `(project_id, run_id)` (a bulk operation's pages: now read in creation order, keyset on
 * `(created_at, run_id)`, a time window an index range instead of a filter). Every new run paid an
 * entry in each; a bulk retry on the latest version writes 100 000 of them in seconds. Measured in
 * `bench/notes.md`, session 22.
 *
 * On a large table an operator may build the new index first with `create index concurrently`
 * under the same name; this migration then only drops the old two.
 */
export class Migration20261204000000StreamProjectKey extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create index if not exists run_streams_project_key_idx on run_streams (project_id, created_at, run_id);
      drop index if exists run_streams_project_created_idx;
      drop index if exists run_streams_project_run_idx;
    `);
  }

  override async down(): Promise<void> {
    this.addSql(`
      create index if not exists run_streams_project_created_idx on run_streams (project_id, created_at);
      create index if not exists run_streams_project_run_idx on run_streams (project_id, run_id);
      drop index if exists run_streams_project_key_idx;
    `);
  }
}
