import { Migration } from '@mikro-orm/migrations';

/**
 * Leaves half of every new page of `run_streams` free, so that an append which changes none of
 * the table's indexed columns (nor a column an index's predicate reads) stays on its page as a
 * heap-only tuple (HOT): no new entry in any of its seven indexes. Most appends are such: a step's
 * start and outcome, an archive, the original's side of a retry on the latest version change only
 * `version`, `state` and `updated_at`; a status change, a finish or a purge still moves the row.
 *
 * Why half: a bulk operation updates every row of a page in one transaction, so the page must hold
 * a second version of each (rows are ~900 bytes); at 80 only the first one or two fit. Measured
 * (`bench/notes.md`, session 12): an update of 2 000 rows 106 ms with full pages (12 636 WAL
 * records), 53 ms at 50 (2 500); heap-only updates in the quick ingest 32 % → 77 %, the table after
 * it 25 → 16 MB (in-page pruning reclaims what a moved row leaves for vacuum), bulk archive's
 * Postgres time per run −25 %. A fresh bulk load takes twice the pages. Applies to pages written
 * from now on (`vacuum full` or a rewrite applies it to the rest).
 */
export class Migration20261201000000StreamFillfactor extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table run_streams set (fillfactor = 50);');
  }

  override async down(): Promise<void> {
    this.addSql('alter table run_streams reset (fillfactor);');
  }
}
