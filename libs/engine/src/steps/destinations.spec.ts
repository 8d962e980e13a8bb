import type { LookupAddress } from 'node:dns';
import { blockedReason, checkDestination, guardedLookup, parseAllowList, type ResolveAll } from './destinations';

describe('blockedReason (the ranges the http step may not reach)', () => {
  it.each([
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.5', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['100.127.255.255', 'carrier-grade NAT'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.10', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['FE80::ABCD', 'link-local'],
    ['ff02::1', 'multicast'],
    // IPv4-mapped and NAT64 addresses reach the IPv4 host they embed.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['0:0:0:0:0:ffff:a00:5', 'private'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['64:ff9b::10.0.0.1', 'private'],
    // Not global unicast, or special within it.
    ['::127.0.0.1', 'reserved'],
    ['100::1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['2002:7f00:1::1', 'reserved'],
    ['2001::1', 'reserved'],
  ])('%s is blocked as %s', (address, reason) => {
    expect(blockedReason(address)).toBe(reason);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '169.255.0.1', '93.184.216.34', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808'])(
    '%s is public',
    (address) => {
      expect(blockedReason(address)).toBeUndefined();
    },
  );
});

describe('parseAllowList', () => {
  it('reads addresses, CIDR ranges and host names, separated by commas or spaces', () => {
    const allow = parseAllowList(' 127.0.0.1, 10.1.0.0/16 [::1]  fd00::/8,Api.Internal. ');
    expect(allow.any).toBe(false);
    expect(allow.entries).toEqual(['127.0.0.1', '10.1.0.0/16', '[::1]', 'fd00::/8', 'Api.Internal.']);
    expect(allow.addresses.check('127.0.0.1', 'ipv4')).toBe(true);
    expect(allow.addresses.check('127.0.0.2', 'ipv4')).toBe(false);
    expect(allow.addresses.check('10.1.200.3', 'ipv4')).toBe(true);
    expect(allow.addresses.check('10.2.0.1', 'ipv4')).toBe(false);
    expect(allow.addresses.check('::1', 'ipv6')).toBe(true);
    expect(allow.addresses.check('fd00::5', 'ipv6')).toBe(true);
    expect([...allow.hosts]).toEqual(['api.internal']);
  });

  it('turns the guard off with * or true, and allows nothing when empty or false', () => {
    expect(parseAllowList('*').any).toBe(true);
    expect(parseAllowList('TRUE').any).toBe(true);
    for (const none of ['', '  ', 'false']) {
      const allow = parseAllowList(none);
      expect(allow.any).toBe(false);
      expect(allow.hosts.size).toBe(0);
      expect(allow.addresses.rules).toEqual([]);
    }
  });

  it.each(['127.0.0.1:8080', '10.0.0.0/33', '::1/129', '10.0.0.0/8/1', 'http://x', '10.0.0', 'a_b', '-x.com'])('refuses %s, naming it', (entry) => {
    expect(() => parseAllowList(`127.0.0.1,${entry}`)).toThrow(`"${entry}" is not an IP address, a CIDR range or a host name`);
  });
});

describe('checkDestination', () => {
  it('refuses a blocked address with a message naming it and why', () => {
    expect(checkDestination(parseAllowList(''), '10.0.0.5', '10.0.0.5')?.message).toBe('destination 10.0.0.5 is not allowed (private address)');
    expect(checkDestination(parseAllowList(''), 'metadata.test', '169.254.169.254')?.message).toBe(
      'destination metadata.test (169.254.169.254) is not allowed (link-local address)',
    );
    expect(checkDestination(parseAllowList(''), 'example.com', '93.184.216.34')).toBeUndefined();
  });

  it('lets through exactly what the allow-list names', () => {
    const allow = parseAllowList('127.0.0.1,10.1.0.0/16,api.internal');
    expect(checkDestination(allow, '127.0.0.1', '127.0.0.1')).toBeUndefined();
    expect(checkDestination(allow, '::ffff:127.0.0.1', '::ffff:127.0.0.1')).toBeUndefined();
    expect(checkDestination(allow, '127.0.0.2', '127.0.0.2')?.reason).toBe('loopback');
    expect(checkDestination(allow, '::1', '::1')?.reason).toBe('loopback');
    expect(checkDestination(allow, 'x.test', '10.1.9.9')).toBeUndefined();
    expect(checkDestination(allow, 'x.test', '10.2.0.1')?.reason).toBe('private');
    // A listed name may resolve to anything; another name to the same address may not.
    expect(checkDestination(allow, 'API.internal', '169.254.169.254')).toBeUndefined();
    expect(checkDestination(allow, 'other.internal', '169.254.169.254')?.reason).toBe('link-local');
    expect(checkDestination(parseAllowList('*'), '169.254.169.254', '169.254.169.254')).toBeUndefined();
  });
});

describe('guardedLookup', () => {
  const resolver = (table: Record<string, string[]>): ResolveAll => (hostname, _options, callback) => {
    const addresses = table[hostname];
    if (!addresses) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
    callback(null, addresses.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 })));
  };
  const lookup = guardedLookup(parseAllowList(''), resolver({ 'public.test': ['93.184.216.34', '2606:4700::1'], 'mixed.test': ['93.184.216.34', '10.0.0.5'] }));
  const call = (host: string, all: boolean) =>
    new Promise<{ err: NodeJS.ErrnoException | null; address: unknown; family?: number }>((resolve) =>
      lookup(host, { all }, (err, address, family) => resolve({ err, address, family })),
    );

  it('answers as dns.lookup does, one address or all of them', async () => {
    expect(await call('public.test', false)).toEqual({ err: null, address: '93.184.216.34', family: 4 });
    expect(await call('public.test', true)).toMatchObject({ err: null, address: [{ address: '93.184.216.34' }, { address: '2606:4700::1' }] });
    expect((await call('nowhere.test', true)).err?.code).toBe('ENOTFOUND');
  });

  it('refuses a name when any of its addresses is blocked, so no fallback can reach it', async () => {
    for (const all of [true, false]) {
      const { err } = await call('mixed.test', all);
      expect(err).toMatchObject({ code: 'ERR_DESTINATION_REFUSED', message: 'destination mixed.test (10.0.0.5) is not allowed (private address)' });
    }
  });
});
