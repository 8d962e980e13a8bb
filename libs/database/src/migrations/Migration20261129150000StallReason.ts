import { Migration } from '@mikro-orm/migrations';

/**
 * Records why a run's projection stalled and on which event type, so an operator can read it from
 * the table (`projection:stalls`) instead of hunting for the stall's log line. `reason` is the
 * projection's `StallReason` ('gap', 'not-created', 'already-created'). Both are null for the rows
 * written before this migration: nothing in the row says what its reason was.
 */
export class Migration20261129150000StallReason extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      alter table projection_stalls add column reason text null, add column event_type text null;
    `);
  }

  override async down(): Promise<void> {
    this.addSql(`
      alter table projection_stalls drop column reason, drop column event_type;
    `);
  }
}
