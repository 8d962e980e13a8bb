import { hashApiKey, type ApiKeyPrincipal } from '@flowruns/access';

export interface ApiKeyCacheOptions {
  /** How long a verified key's principal is reused. */
  readonly ttlMs: number;
  /** How long "no such key" is reused (short: a key created a moment ago should work soon). */
  readonly negativeTtlMs: number;
  /** Bound on remembered keys, so a flood of random keys cannot grow memory without limit. */
  readonly maxEntries: number;
}

interface Entry {
  readonly principal: ApiKeyPrincipal | null;
  readonly expiresAt: number;
}

/**
 * Remembers key verifications for a short time so that most requests cost no Postgres round trip.
 * Entries are keyed by the key's SHA-256, never the key itself. Concurrent first requests with the
 * same key share one verification. A failed verification (database down) is not remembered.
 */
export class ApiKeyCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<ApiKeyPrincipal | null>>();

  constructor(
    private readonly verify: (key: string) => Promise<ApiKeyPrincipal | null>,
    private readonly opts: ApiKeyCacheOptions,
    private readonly now: () => number = Date.now,
  ) {}

  async principalOf(key: string): Promise<ApiKeyPrincipal | null> {
    const id = hashApiKey(key).toString('base64url');
    const hit = this.entries.get(id);
    if (hit && hit.expiresAt > this.now()) return hit.principal;
    if (hit) this.entries.delete(id);

    let pending = this.inflight.get(id);
    if (!pending) {
      pending = this.verify(key)
        .then((principal) => {
          this.remember(id, principal);
          return principal;
        })
        .finally(() => this.inflight.delete(id));
      this.inflight.set(id, pending);
    }
    return pending;
  }

  get size(): number {
    return this.entries.size;
  }

  private remember(id: string, principal: ApiKeyPrincipal | null): void {
    const ttl = principal ? this.opts.ttlMs : this.opts.negativeTtlMs;
    if (ttl <= 0) return;
    // Maps iterate in insertion order: the first entry is the oldest one.
    while (this.entries.size >= this.opts.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    this.entries.set(id, { principal, expiresAt: this.now() + ttl });
  }
}
