import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Raw Postgres access the key store needs: satisfied by MikroORM's `em.execute` or a pg client. */
export interface SqlRunner {
  execute<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

export interface ApiKeyPrincipal {
  readonly keyId: string;
  readonly projectId: string;
}

const KEY_PATTERN = /^sk-[A-Za-z0-9_-]{43}$/;

export const hashApiKey = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest();

/** A new key: `sk-` and 256 random bits. Only its SHA-256 is stored; the key is shown once. */
export function generateApiKey(): { key: string; hash: Buffer; prefix: string } {
  const key = `sk-${randomBytes(32).toString('base64url')}`;
  return { key, hash: hashApiKey(key), prefix: key.slice(0, 7) };
}

export const looksLikeApiKey = (key: string): boolean => KEY_PATTERN.test(key);

/** API keys, stored hashed; each belongs to exactly one project. */
export class ApiKeyStore {
  constructor(private readonly sql: SqlRunner) {}

  async create(projectId: string, id: string): Promise<{ id: string; key: string }> {
    const { key, hash, prefix } = generateApiKey();
    await this.sql.execute('insert into projects (id) values (?) on conflict (id) do nothing', [projectId]);
    await this.sql.execute('insert into api_keys (id, project_id, key_hash, key_prefix) values (?, ?, ?, ?)', [
      id,
      projectId,
      hash,
      prefix,
    ]);
    return { id, key };
  }

  /** The key's principal, or null for an unknown, malformed or revoked key. */
  async verify(key: string): Promise<ApiKeyPrincipal | null> {
    if (!looksLikeApiKey(key)) return null;
    const hash = hashApiKey(key);
    const rows = await this.sql.execute<{ id: string; project_id: string; key_hash: Buffer }>(
      'select id, project_id, key_hash from api_keys where key_hash = ? and revoked_at is null',
      [hash],
    );
    const row = rows[0];
    // The index lookup finds the row; the constant-time compare is what decides.
    if (!row || row.key_hash.length !== hash.length || !timingSafeEqual(row.key_hash, hash)) return null;
    return { keyId: row.id, projectId: row.project_id };
  }

  async revoke(id: string): Promise<boolean> {
    const rows = await this.sql.execute<{ id: string }>(
      'update api_keys set revoked_at = now() where id = ? and revoked_at is null returning id',
      [id],
    );
    return rows.length > 0;
  }

  async list(projectId: string): Promise<{ id: string; prefix: string; createdAt: Date; revokedAt: Date | null }[]> {
    // Raw queries return timestamptz as text; the API promises Dates.
    const rows = await this.sql.execute<{ id: string; key_prefix: string; created_at: string | Date; revoked_at: string | Date | null }>(
      'select id, key_prefix, created_at, revoked_at from api_keys where project_id = ? order by created_at, id',
      [projectId],
    );
    return rows.map((r) => ({
      id: r.id,
      prefix: r.key_prefix,
      createdAt: new Date(r.created_at),
      revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at),
    }));
  }
}
