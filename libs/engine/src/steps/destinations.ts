import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Agent, buildConnector } from 'undici';

/**
 * The SSRF guard of the `http` step. A flow author chooses the URL, so without it a flow could make
 * the worker call whatever the worker can reach: loopback services, the private network, a cloud
 * metadata endpoint (169.254.169.254).
 *
 * The check happens where the connection is made, on the address actually connected to: a host name
 * is resolved by the guard's own `lookup` (a name that resolves to a blocked address is refused,
 * whatever it resolved to a moment earlier — DNS rebinding), an IP literal is checked by the
 * connector before any socket is opened (Node calls no `lookup` for a literal), and every redirect
 * hop opens its connections through the same dispatcher. A URL check before the request would miss
 * all three.
 */

/** Why an address is blocked; the refusal's message says "(<reason> address)". */
export type BlockReason = 'loopback' | 'private' | 'link-local' | 'unspecified' | 'carrier-grade NAT' | 'multicast' | 'reserved';

const ranges = (family: 'ipv4' | 'ipv6', cidrs: readonly string[]): BlockList => {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [net, prefix] = cidr.split('/');
    list.addSubnet(net, Number(prefix), family);
  }
  return list;
};

// The special-purpose registries of IANA (RFC 6890 and later): nothing a public API lives on.
const IPV4: readonly (readonly [BlockReason, BlockList])[] = [
  ['unspecified', ranges('ipv4', ['0.0.0.0/8'])],
  ['loopback', ranges('ipv4', ['127.0.0.0/8'])],
  ['private', ranges('ipv4', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'])],
  ['link-local', ranges('ipv4', ['169.254.0.0/16'])],
  ['carrier-grade NAT', ranges('ipv4', ['100.64.0.0/10'])],
  ['multicast', ranges('ipv4', ['224.0.0.0/4'])],
  // IETF protocol assignments, documentation, the 6to4 relay, benchmarking, 240/4 and the broadcast address.
  ['reserved', ranges('ipv4', ['192.0.0.0/24', '192.0.2.0/24', '192.88.99.0/24', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '240.0.0.0/4'])],
];
const IPV6: readonly (readonly [BlockReason, BlockList])[] = [
  ['unspecified', ranges('ipv6', ['::/128'])],
  ['loopback', ranges('ipv6', ['::1/128'])],
  // Unique local, the deprecated site-local, NAT64 for local use.
  ['private', ranges('ipv6', ['fc00::/7', 'fec0::/10', '64:ff9b:1::/48'])],
  ['link-local', ranges('ipv6', ['fe80::/10'])],
  ['multicast', ranges('ipv6', ['ff00::/8'])],
  // IETF protocol assignments (Teredo among them), documentation, 6to4 (which embeds any IPv4 address).
  ['reserved', ranges('ipv6', ['2001::/23', '2001:db8::/32', '2002::/16', '3fff::/20'])],
];
/** Global unicast: any other IPv6 address (IPv4-compatible, discard-only, unassigned) is reserved. */
const GLOBAL_UNICAST = ranges('ipv6', ['2000::/3']);

/** The eight 16-bit groups of a valid IPv6 address (zone id ignored, a trailing dotted IPv4 folded in). */
function ipv6Groups(address: string): number[] {
  let s = address.split('%')[0];
  if (s.includes('.')) {
    const at = s.lastIndexOf(':') + 1;
    const [a, b, c, d] = s.slice(at).split('.').map(Number);
    s = `${s.slice(0, at)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => parseInt(g, 16));
}

/**
 * The IPv4 address an IPv6 address stands for when a connection to it reaches that IPv4 host:
 * IPv4-mapped (`::ffff:127.0.0.1`, which a dual-stack socket connects to 127.0.0.1) and NAT64
 * (`64:ff9b::/96`, which a NAT64 gateway translates).
 */
function embeddedIPv4(address: string): string | undefined {
  const g = ipv6Groups(address);
  const mapped = g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff;
  const nat64 = g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0);
  if (!mapped && !nat64) return undefined;
  return [g[6] >> 8, g[6] & 0xff, g[7] >> 8, g[7] & 0xff].join('.');
}

/** Why the guard blocks an IP address, or `undefined` when it is a public one. Not an IP address: `undefined`. */
export function blockedReason(address: string): BlockReason | undefined {
  const family = isIP(address);
  if (family === 4) return IPV4.find(([, list]) => list.check(address, 'ipv4'))?.[0];
  if (family !== 6) return undefined;
  const v4 = embeddedIPv4(address);
  if (v4 !== undefined) return blockedReason(v4);
  const bare = address.split('%')[0];
  return IPV6.find(([, list]) => list.check(bare, 'ipv6'))?.[0] ?? (GLOBAL_UNICAST.check(bare, 'ipv6') ? undefined : 'reserved');
}

/**
 * Destinations the guard lets through although they are blocked: addresses, CIDR ranges and host
 * names (a listed name may resolve to any address). `any` turns the guard off.
 */
export interface DestinationAllowList {
  readonly any: boolean;
  readonly addresses: BlockList;
  readonly hosts: ReadonlySet<string>;
  /** The entries as written, for logs. */
  readonly entries: readonly string[];
}

const HOST_NAME = /^(?=.{1,253}\.?$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;
const hostKey = (host: string): string => host.toLowerCase().replace(/\.$/, '');

/**
 * Parses an allow-list: entries separated by commas or whitespace, each an IP address (`127.0.0.1`,
 * `::1` or `[::1]`), a CIDR range (`10.1.0.0/16`, `fd00::/8`) or a host name (`api.internal`).
 * `*` or `true` allows everything (the guard is off); empty or `false` allows nothing.
 * Throws, naming the entry, on anything else (a port is not part of an entry).
 */
export function parseAllowList(text: string): DestinationAllowList {
  const entries = text.split(/[\s,]+/).filter(Boolean);
  const addresses = new BlockList();
  const hosts = new Set<string>();
  let any = false;
  for (const entry of entries) {
    const lower = entry.toLowerCase();
    if (lower === '*' || lower === 'true') {
      any = true;
      continue;
    }
    if (lower === 'false') continue;
    const [ip, prefix, ...more] = entry.replace(/^\[(.*)\]$/, '$1').split('/');
    const family = isIP(ip);
    if (family !== 0 && prefix === undefined) {
      addresses.addAddress(ip, family === 4 ? 'ipv4' : 'ipv6');
    } else if (family !== 0 && more.length === 0 && /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)) {
      addresses.addSubnet(ip, Number(prefix), family === 4 ? 'ipv4' : 'ipv6');
    } else if (HOST_NAME.test(entry) && !/^[\d.]+$/.test(entry)) {
      hosts.add(hostKey(entry));
    } else {
      throw new Error(`"${entry}" is not an IP address, a CIDR range or a host name (or "*" to allow everything)`);
    }
  }
  return { any, addresses, hosts, entries };
}

/** No exceptions: every blocked destination is refused. */
export const NOTHING_ALLOWED: DestinationAllowList = parseAllowList('');

const allowsAddress = (allow: DestinationAllowList, address: string): boolean => {
  const family = isIP(address);
  if (family === 0) return false;
  const bare = address.split('%')[0];
  if (allow.addresses.check(bare, family === 4 ? 'ipv4' : 'ipv6')) return true;
  const v4 = family === 6 ? embeddedIPv4(bare) : undefined;
  return v4 !== undefined && allow.addresses.check(v4, 'ipv4');
};

/** A connection the guard refused; the http step fails with its message. */
export class DestinationRefusedError extends Error {
  readonly code = 'ERR_DESTINATION_REFUSED';
  constructor(
    readonly host: string,
    readonly address: string,
    readonly reason: BlockReason,
  ) {
    super(`destination ${host === address ? address : `${host} (${address})`} is not allowed (${reason} address)`);
    this.name = 'DestinationRefusedError';
  }
}

/** The refusal for connecting to `address` (which `host` resolved to), or `undefined` when allowed. */
export function checkDestination(allow: DestinationAllowList, host: string, address: string): DestinationRefusedError | undefined {
  if (allow.any || allow.hosts.has(hostKey(host))) return undefined;
  const reason = blockedReason(address);
  if (reason === undefined || allowsAddress(allow, address)) return undefined;
  return new DestinationRefusedError(host, address, reason);
}

/** `dns.lookup` with `all: true`, as the guard calls it. */
export type ResolveAll = (hostname: string, options: { family?: number; hints?: number }, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

const systemResolveAll: ResolveAll = (hostname, options, callback) => dnsLookup(hostname, { ...options, all: true }, callback);

/**
 * A `lookup` for `net.connect`/`tls.connect` that resolves every address of the name and refuses
 * the connection when any of them is blocked (so that no fallback between addresses reaches one).
 */
export function guardedLookup(allow: DestinationAllowList, resolveAll: ResolveAll = systemResolveAll): LookupFunction {
  return (hostname, options, callback) => {
    resolveAll(hostname, { family: typeof options.family === 'number' ? options.family : undefined, hints: options.hints }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      for (const { address } of addresses) {
        const refused = checkDestination(allow, hostname, address);
        if (refused) return callback(refused, '', 0);
      }
      if (addresses.length === 0) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
      // Node asks for all addresses when it may try several (autoSelectFamily), else for one.
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

export interface GuardedAgentOptions {
  readonly allow: DestinationAllowList;
  /** Resolves host names; default `dns.lookup`. Tests inject one. */
  readonly resolveAll?: ResolveAll;
}

/**
 * An undici dispatcher whose every connection — the first request's and each redirect hop's —
 * goes through the guard: IP literals are checked before a socket exists, names through
 * `guardedLookup`. A refusal rejects the request with `fetch failed` caused by a
 * `DestinationRefusedError`.
 */
export function guardedAgent(opts: GuardedAgentOptions): Agent {
  if (opts.allow.any) return new Agent();
  const connector = buildConnector({ lookup: guardedLookup(opts.allow, opts.resolveAll) });
  return new Agent({
    connect: (options, callback) => {
      // undici has already taken the brackets off an IPv6 literal.
      if (isIP(options.hostname)) {
        const refused = checkDestination(opts.allow, options.hostname, options.hostname);
        // Asynchronously, as a socket's failure would be: undici does not expect its callback inside the call.
        if (refused) return void process.nextTick(() => callback(refused, null));
      }
      connector(options, callback);
    },
  });
}
