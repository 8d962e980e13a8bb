import { Migration } from '@mikro-orm/migrations';

/**
 * The gateway's `Idempotency-Key` records, in Postgres so that every gateway instance (and one
 * restarted) sees the same keys.
 *
 * - One row per `(scope, key)`: the scope is the API key's project (or, for the resume routes that
 *   take no API key, the route path).
 * - `request_hash` is sha256 of method + path + canonical body: the body itself is never stored.
 * - While the first request is in flight `status_code` is null and `owner` names the claim;
 *   `expires_at` is then the claim's deadline (a gateway that died mid-request frees the key at
 *   it). Once answered, the row holds the answer and `expires_at` is the end of the key's TTL.
 * - Expired rows are ignored by readers and deleted in bounded batches by the gateway's sweeper
 *   (`idempotency_keys_expires_idx`).
 */
export class Migration20261129000000IdempotencyKeys extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table idempotency_keys (
        scope text not null,
        key text not null,
        request_hash bytea not null,
        owner text not null,
        status_code integer null,
        response_body json null,
        location text null,
        created_at timestamptz not null default now(),
        expires_at timestamptz not null,
        primary key (scope, key)
      );
      create index idempotency_keys_expires_idx on idempotency_keys (expires_at);
    `);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists idempotency_keys;');
  }
}
