import { Migration } from '@mikro-orm/migrations';

/**
 * The relay's work list moves from a column of the event log to a queue of its own.
 *
 * Before, the relay marked each event it published (`update run_events set published_at = now()`):
 * a new version of the whole row, envelope included, and an entry in each of the table's three
 * unique indexes — the partial index on `published_at` ruled out a heap-only update — for every
 * event, later vacuumed. Now an event's position waits in `run_events_outbox` (one bigint) until
 * the relay has published it and deletes it. A statement-level trigger enqueues whatever is
 * inserted into `run_events`, by any code, in the inserting transaction: an event is in the queue
 * exactly when it is committed, as the column was.
 *
 * Deploying: run this before the new command services; an older relay then fails its batches
 * (`published_at` is gone) and retries until it is replaced, so nothing is published twice or lost.
 */
export class Migration20261129170000OutboxQueue extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table run_events_outbox (position bigint primary key);
      create function run_events_enqueue() returns trigger language plpgsql as $fn$
      begin
        insert into run_events_outbox (position) select position from appended;
        return null;
      end
      $fn$;
      create trigger run_events_enqueue after insert on run_events
        referencing new table as appended for each statement execute function run_events_enqueue();
      insert into run_events_outbox (position) select position from run_events where published_at is null;
      drop index run_events_unpublished_idx;
      alter table run_events drop column published_at;
    `);
  }

  override async down(): Promise<void> {
    this.addSql(`
      alter table run_events add column published_at timestamptz null;
      update run_events e set published_at = now() where not exists (select 1 from run_events_outbox o where o.position = e.position);
      create index run_events_unpublished_idx on run_events (position) where published_at is null;
      drop trigger run_events_enqueue on run_events;
      drop function run_events_enqueue();
      drop table run_events_outbox;
    `);
  }
}
