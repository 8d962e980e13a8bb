import { generateApiKey, type ApiKeyPrincipal } from '@flowruns/access';
import { ApiKeyCache } from './api-key-cache';
import { bearerToken } from './api-key.guard';

describe('ApiKeyCache', () => {
  const principal: ApiKeyPrincipal = { keyId: 'key_1', projectId: 'p1' };
  let now = 0;
  let calls: string[];
  const known = generateApiKey().key;
  const verify = async (key: string) => {
    calls.push(key);
    return key === known ? principal : null;
  };
  const cache = (maxEntries = 100) => new ApiKeyCache(verify, { ttlMs: 30_000, negativeTtlMs: 5_000, maxEntries }, () => now);

  beforeEach(() => {
    now = 1_000_000;
    calls = [];
  });

  it('reuses a verified key until the TTL ends', async () => {
    const c = cache();
    expect(await c.principalOf(known)).toEqual(principal);
    now += 29_999;
    expect(await c.principalOf(known)).toEqual(principal);
    expect(calls).toHaveLength(1);
    now += 1;
    await c.principalOf(known);
    expect(calls).toHaveLength(2);
  });

  it('remembers an unknown key for the shorter negative TTL', async () => {
    const c = cache();
    const unknown = generateApiKey().key;
    expect(await c.principalOf(unknown)).toBeNull();
    now += 4_999;
    expect(await c.principalOf(unknown)).toBeNull();
    expect(calls).toHaveLength(1);
    now += 1;
    await c.principalOf(unknown);
    expect(calls).toHaveLength(2);
  });

  it('shares one verification between concurrent first requests', async () => {
    const c = cache();
    await Promise.all([c.principalOf(known), c.principalOf(known), c.principalOf(known)]);
    expect(calls).toHaveLength(1);
  });

  it('does not remember a failed verification', async () => {
    let fail = true;
    const c = new ApiKeyCache(
      async () => {
        if (fail) throw new Error('database down');
        return principal;
      },
      { ttlMs: 30_000, negativeTtlMs: 5_000, maxEntries: 10 },
      () => now,
    );
    await expect(c.principalOf(known)).rejects.toThrow('database down');
    fail = false;
    expect(await c.principalOf(known)).toEqual(principal);
  });

  it('stays within maxEntries, dropping the oldest', async () => {
    const c = cache(3);
    const keys = Array.from({ length: 5 }, () => generateApiKey().key);
    for (const k of keys) await c.principalOf(k);
    expect(c.size).toBe(3);
    calls = [];
    await c.principalOf(keys[4]);
    await c.principalOf(keys[0]);
    expect(calls).toEqual([keys[0]]);
  });
});

describe('bearerToken', () => {
  it.each([
    ['Bearer sk-abc', 'sk-abc'],
    ['bearer   sk-abc ', 'sk-abc'],
    ['Basic abc', null],
    ['Bearer', null],
    ['Bearer a b', null],
    [undefined, null],
  ])('%j → %j', (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });
});
