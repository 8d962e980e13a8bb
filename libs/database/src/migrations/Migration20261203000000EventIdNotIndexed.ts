import { Migration } from '@mikro-orm/migrations';

/**
 * Drops the unique index on `run_events.event_id`: nothing looks an event up by its id (the relay
 * reads it beside the position, the projector keeps versions by run and `seq`), and every append
 * paid one more index entry per event for it. An event's id stays unique by construction (a uuid
 * v7: its millisecond, a per-process counter and 62 random bits), and `(run_id, seq)` still refuses
 * the same event appended twice. Measured in `bench/notes.md`, session 21.
 */
export class Migration20261203000000EventIdNotIndexed extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table run_events drop constraint if exists run_events_event_id_key;');
  }

  override async down(): Promise<void> {
    this.addSql('alter table run_events add constraint run_events_event_id_key unique (event_id);');
  }
}
