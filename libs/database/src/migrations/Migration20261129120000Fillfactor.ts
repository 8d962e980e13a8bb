import { Migration } from '@mikro-orm/migrations';

/**
 * Leaves part of every new page of the views free, so that an update which changes no indexed
 * column (an archive, a purge, a step's progress) can stay on its page as a heap-only tuple (HOT):
 * no new entry in any of the table's indexes (run_views has six, one of them GIN). With full pages
 * (the default fillfactor, 100) every such update went to another page and into every index.
 * Applies to pages written from now on.
 */
export class Migration20261129120000Fillfactor extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      alter table run_views set (fillfactor = 80);
      alter table step_views set (fillfactor = 80);
    `);
  }

  override async down(): Promise<void> {
    this.addSql(`
      alter table run_views reset (fillfactor);
      alter table step_views reset (fillfactor);
    `);
  }
}
