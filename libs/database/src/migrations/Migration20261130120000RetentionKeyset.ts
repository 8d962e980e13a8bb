import { Migration } from '@mikro-orm/migrations';

/**
 * The retention candidates' index gains the run id as its second key, so a purge pass can walk it
 * with a keyset (`(finished_at, run_id) > (last batch's)`, `purgeExpiredBatch`): each batch starts
 * where the last one ended instead of at the index's head.
 *
 * Why: a batch read the index from its head every time, through every entry it had no use for —
 * runs of a project whose own window is longer than the shortest one (in the range, not expired;
 * each one a heap fetch and a join), and the entries of runs purged since the last vacuum. Measured
 * on 500 000 runs of a 365-day project interleaved with 100 000 of a 30-day one, half of the latter
 * purged: 150 ms per batch of 200 (247 000 rows read and filtered out), against 0.8 ms at the start
 * of the pass — a pass grew with the square of its length. With the run id as a tie-break the
 * order is total: a bulk operation finishes thousands of runs at one instant.
 *
 * On a large table an operator may build the new index first with `create index concurrently`
 * under this name: the migration then only drops the old one.
 */
export class Migration20261130120000RetentionKeyset extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create index if not exists run_streams_retention_key_idx on run_streams (finished_at, run_id) where finished_at is not null and purged_at is null;
      drop index if exists run_streams_retention_idx;
    `);
  }

  override async down(): Promise<void> {
    this.addSql(`
      create index if not exists run_streams_retention_idx on run_streams (finished_at) where finished_at is not null and purged_at is null;
      drop index if exists run_streams_retention_key_idx;
    `);
  }
}
