import { randomUUID } from 'node:crypto';
import type { ExecutesSql } from '@flowruns/database';

/** A request's answer as it is kept and replayed. */
export interface StoredAnswer {
  readonly statusCode: number;
  readonly body: unknown;
  readonly location: string | null;
}

/** What claiming a key found. */
export type Claim =
  /** The key is this request's: run it, then `complete` or `release` with the owner token. */
  | { readonly kind: 'claimed'; readonly owner: string }
  /** The key was used for another request (method, path or body). */
  | { readonly kind: 'mismatch' }
  /** The first request with the key is still being worked on. */
  | { readonly kind: 'in-progress' }
  /** The first request was answered: this is its answer. */
  | { readonly kind: 'replay'; readonly answer: StoredAnswer };

interface Row {
  request_hash: Buffer;
  status_code: number | null;
  response_body: unknown;
  location: string | null;
}

/** Attempts at claiming before a key that keeps changing hands is reported as in progress. */
const CLAIM_ATTEMPTS = 3;

/**
 * The `idempotency_keys` table. All times are Postgres's `now()`, so several gateways agree on
 * what has expired. A row past `expires_at` counts as absent everywhere: a claim takes it over, so
 * expiry never waits for the sweeper.
 *
 * Every write after the claim names the claim's owner token: if a claim outlived its lock (its
 * gateway stalled) and another request took the key over, the first one's late answer cannot
 * overwrite or release the second one's.
 */
export class IdempotencyStore {
  constructor(
    private readonly sql: () => ExecutesSql,
    private readonly opts: { readonly ttlSeconds: number; readonly lockSeconds: number },
  ) {}

  async claim(scope: string, key: string, hash: Buffer): Promise<Claim> {
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
      const owner = randomUUID();
      // Insert, or take over an expired row; a live row is left alone (and nothing is returned).
      const claimed = (await this.sql().execute(
        `insert into idempotency_keys (scope, key, request_hash, owner, expires_at)
         values (?, ?, ?, ?, now() + make_interval(secs => ?))
         on conflict (scope, key) do update set
           request_hash = excluded.request_hash, owner = excluded.owner, status_code = null,
           response_body = null, location = null, created_at = now(), expires_at = excluded.expires_at
         where idempotency_keys.expires_at <= now()
         returning owner`,
        [scope, key, hash, owner, this.opts.lockSeconds],
      )) as unknown[];
      if (claimed.length > 0) return { kind: 'claimed', owner };

      const [row] = (await this.sql().execute(
        `select request_hash, status_code, response_body, location from idempotency_keys
         where scope = ? and key = ? and expires_at > now()`,
        [scope, key],
      )) as Row[];
      // Gone between the two statements (released, or expired just now): claim again.
      if (!row) continue;
      if (!Buffer.from(row.request_hash).equals(hash)) return { kind: 'mismatch' };
      if (row.status_code === null) return { kind: 'in-progress' };
      return { kind: 'replay', answer: { statusCode: row.status_code, body: row.response_body, location: row.location } };
    }
    return { kind: 'in-progress' };
  }

  /** Keeps the answer for the TTL, from now. */
  async complete(scope: string, key: string, owner: string, answer: StoredAnswer): Promise<void> {
    await this.sql().execute(
      `update idempotency_keys
       set status_code = ?, response_body = ?::json, location = ?, expires_at = now() + make_interval(secs => ?)
       where scope = ? and key = ? and owner = ?`,
      [
        answer.statusCode,
        answer.body === undefined ? null : JSON.stringify(answer.body),
        answer.location,
        this.opts.ttlSeconds,
        scope,
        key,
        owner,
      ],
    );
  }

  /** Frees the key (the request had no final answer), so the client may send it again. */
  async release(scope: string, key: string, owner: string): Promise<void> {
    await this.sql().execute('delete from idempotency_keys where scope = ? and key = ? and owner = ? and status_code is null', [
      scope,
      key,
      owner,
    ]);
  }

  /**
   * Deletes up to `batchSize` expired rows; returns how many. Rows another gateway's sweep (or a
   * claim taking an expired row over) holds are skipped, not waited for, so concurrent sweepers
   * split the work instead of queueing behind each other.
   */
  async deleteExpired(batchSize: number): Promise<number> {
    const deleted = (await this.sql().execute(
      `delete from idempotency_keys where (scope, key) in (
         select scope, key from idempotency_keys where expires_at <= now()
         order by expires_at limit ? for update skip locked)
       returning 1`,
      [batchSize],
    )) as unknown[];
    return deleted.length;
  }
}
