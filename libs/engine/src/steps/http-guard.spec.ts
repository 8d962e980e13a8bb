import type { LookupAddress } from 'node:dns';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseAllowList, type ResolveAll } from './destinations';
import { httpStep, type HttpStepOptions } from './http';
import type { StepContext, StepOutcome } from './types';

/**
 * The http step's SSRF guard against real local servers: `allowed` on 127.0.0.1 (the only address
 * the tests allow) and `forbidden` on 127.0.0.2 — loopback too, reachable, but not allowed — which
 * must never see a request. Host names resolve through an injected resolver where a test needs one.
 */
describe('http step: SSRF guard', () => {
  type Server = { server: http.Server; port: number; calls: string[] };
  let allowed: Server;
  let forbidden: Server;

  async function serve(host: string): Promise<Server> {
    const calls: string[] = [];
    const server = http.createServer((req, res) => {
      calls.push(req.url ?? '');
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/redirect') return void res.writeHead(302, { location: url.searchParams.get('to') ?? '/' }).end();
      // A new connection for the next request, so that its host is resolved again.
      if (url.pathname === '/close') return void res.writeHead(200, { 'content-type': 'application/json', connection: 'close' }).end('{"closed":true}');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ served: host, path: url.pathname }));
    });
    await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
    return { server, port: (server.address() as AddressInfo).port, calls };
  }

  beforeAll(async () => {
    allowed = await serve('127.0.0.1');
    forbidden = await serve('127.0.0.2');
  });
  afterAll(async () => {
    for (const { server } of [allowed, forbidden]) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
  afterEach(() => {
    // Whatever a test did, the forbidden server was never reached (unless the test allowed it and emptied this).
    expect(forbidden.calls).toEqual([]);
  });

  const ctx = (): StepContext => ({ runId: 'r1', stepName: 's1', signal: new AbortController().signal });
  const stepWith = (opts: Partial<HttpStepOptions> = {}) => httpStep({ timeoutMs: 2000, allow: parseAllowList('127.0.0.1'), ...opts });
  const get = (url: string, opts?: Partial<HttpStepOptions>): Promise<StepOutcome> => stepWith(opts)({ method: 'GET', url }, ctx());
  const refusal = (url: string, destination: string, reason: string) => ({
    kind: 'failed',
    error: { message: `GET ${url}: destination ${destination} is not allowed (${reason} address)` },
  });
  const A = () => `http://127.0.0.1:${allowed.port}`;
  const F = () => `http://127.0.0.2:${forbidden.port}`;
  /** The allowed server's answer: 302 to `to`. */
  const via = (to: string) => `${A()}/redirect?to=${encodeURIComponent(to)}`;
  const resolver =
    (table: Record<string, string[]>, seen: string[] = []): ResolveAll =>
    (hostname, _options, callback) => {
      seen.push(hostname);
      const addresses = table[hostname] ?? [];
      callback(null, addresses.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 })));
    };

  it('reaches an allowed address as before', async () => {
    expect(await get(`${A()}/json`)).toMatchObject({ kind: 'succeeded', output: { status: 200, body: { served: '127.0.0.1' } } });
  });

  it('refuses every blocked address by default, before connecting, as a failure of the step', async () => {
    const before = allowed.calls.length;
    const none = parseAllowList('');
    expect(await get(`${A()}/json`, { allow: none })).toEqual(refusal(`${A()}/json`, '127.0.0.1', 'loopback'));
    // The URL parser's spellings of an address are the address: 2130706433 and 0x7f.1 are 127.0.0.1.
    expect(await get(`http://2130706433:${allowed.port}/json`, { allow: none })).toEqual(refusal(`http://2130706433:${allowed.port}/json`, '127.0.0.1', 'loopback'));
    expect(allowed.calls.length).toBe(before);
  });

  it.each([
    ['http://169.254.169.254/latest/meta-data/', '169.254.169.254', 'link-local'],
    ['http://10.0.0.5/', '10.0.0.5', 'private'],
    ['http://172.16.3.4:8080/', '172.16.3.4', 'private'],
    ['http://192.168.0.1/', '192.168.0.1', 'private'],
    ['http://100.64.0.1/', '100.64.0.1', 'carrier-grade NAT'],
    ['http://0.0.0.0:4/', '0.0.0.0', 'unspecified'],
    ['http://224.0.0.1/', '224.0.0.1', 'multicast'],
    ['http://[::1]:4/', '::1', 'loopback'],
    ['http://[fe80::1]/', 'fe80::1', 'link-local'],
    ['http://[fd00::1]/', 'fd00::1', 'private'],
    ['http://[::ffff:169.254.169.254]/', '::ffff:a9fe:a9fe', 'link-local'],
    ['https://127.0.0.1:4/', '127.0.0.1', 'loopback'],
  ])('refuses %s (%s, %s)', async (url, destination, reason) => {
    const out = await get(url, { allow: parseAllowList('') });
    expect(out).toEqual(refusal(url, destination, reason));
  });

  it('refuses the IPv4-mapped form of a blocked address (the allow-list naming another)', async () => {
    const url = `http://[::ffff:127.0.0.2]:${forbidden.port}/x`;
    expect(await get(url)).toEqual(refusal(url, '::ffff:7f00:2', 'loopback'));
  });

  it('refuses a host name that resolves to a blocked address (http and https)', async () => {
    // `localhost` through the system resolver: 127.0.0.1 or ::1, both loopback (and not allowed here).
    for (const url of [`http://localhost:${allowed.port}/json`, 'https://localhost:4/']) {
      const out = await get(url, { allow: parseAllowList('') });
      expect(out).toMatchObject({ kind: 'failed', error: { message: expect.stringMatching(/: destination localhost \((127\.0\.0\.1|::1)\) is not allowed \(loopback address\)$/) } });
    }
    const resolveAll = resolver({ 'metadata.test': ['169.254.169.254'], 'mixed.test': ['127.0.0.1', '10.0.0.5'] });
    expect(await get('http://metadata.test/latest/', { resolveAll })).toEqual(
      refusal('http://metadata.test/latest/', 'metadata.test (169.254.169.254)', 'link-local'),
    );
    // One blocked address among allowed ones refuses the name.
    expect(await get(`http://mixed.test:${allowed.port}/json`, { resolveAll })).toEqual(
      refusal(`http://mixed.test:${allowed.port}/json`, 'mixed.test (10.0.0.5)', 'private'),
    );
  });

  it('checks a name again on every new connection (DNS rebinding)', async () => {
    const seen: string[] = [];
    let answers = [['127.0.0.1'], ['127.0.0.2']];
    const resolveAll: ResolveAll = (hostname, options, callback) => {
      const [first, ...rest] = answers;
      answers = rest;
      resolver({ [hostname]: first }, seen)(hostname, options, callback);
    };
    const step = stepWith({ resolveAll });
    const first = await step({ method: 'GET', url: `http://rebind.test:${allowed.port}/close` }, ctx());
    expect(first).toMatchObject({ kind: 'succeeded', output: { body: { closed: true } } });
    // Same name, same port: now it resolves to the forbidden address (where nothing listens on this port).
    const url = `http://rebind.test:${allowed.port}/json`;
    expect(await step({ method: 'GET', url }, ctx())).toEqual(refusal(url, 'rebind.test (127.0.0.2)', 'loopback'));
    expect(seen).toEqual(['rebind.test', 'rebind.test']);
  });

  describe('redirects: every hop goes through the guard', () => {
    it('follows a redirect to an allowed destination', async () => {
      expect(await get(via('/json'))).toMatchObject({ kind: 'succeeded', output: { status: 200, body: { served: '127.0.0.1', path: '/json' } } });
    });

    it.each([
      ['another loopback address', () => `${F()}/secret`, () => '127.0.0.2', 'loopback'],
      ['the cloud metadata address', () => 'http://169.254.169.254/latest/meta-data/iam/', () => '169.254.169.254', 'link-local'],
      ['an IPv6 loopback literal', () => `http://[::1]:${forbidden.port}/`, () => '::1', 'loopback'],
      ['a name resolving to another loopback address', () => `http://internal.test:${forbidden.port}/`, () => 'internal.test (127.0.0.2)', 'loopback'],
    ])('refuses a redirect from an allowed server to %s', async (_what, target, destination, reason) => {
      const url = via(target());
      const out = await get(url, { resolveAll: resolver({ 'internal.test': ['127.0.0.2'] }) });
      expect(out.kind).toBe('failed');
      if (out.kind !== 'failed') return;
      const [, got] = /^GET .*: destination (.*) is not allowed \((.*) address\)$/.exec(out.error.message) ?? [];
      expect(got).toEqual(destination());
      expect(out.error.message.endsWith(`(${reason} address)`)).toBe(true);
      expect(out.error.status).toBeUndefined();
    });

    it('refuses a blocked hop after allowed ones', async () => {
      const url = via(via(`${F()}/deep`));
      expect(await get(url)).toEqual(refusal(url, '127.0.0.2', 'loopback'));
    });
  });

  describe('the allow-list', () => {
    it('lets through an address, a range or a host name it lists, and nothing else', async () => {
      for (const allow of ['127.0.0.1,127.0.0.2', '127.0.0.0/30']) {
        expect(await get(via(`${F()}/allowed`), { allow: parseAllowList(allow) })).toMatchObject({
          kind: 'succeeded',
          output: { body: { served: '127.0.0.2', path: '/allowed' } },
        });
      }
      expect(await get(`http://localhost:${allowed.port}/json`, { allow: parseAllowList('localhost') })).toMatchObject({
        kind: 'succeeded',
        output: { body: { served: '127.0.0.1' } },
      });
      // Listing 127.0.0.1 does not allow the metadata address.
      expect(await get('http://169.254.169.254/', { allow: parseAllowList('127.0.0.1') })).toMatchObject({ kind: 'failed' });
      expect(forbidden.calls).toEqual(['/allowed', '/allowed']);
      forbidden.calls.length = 0;
    });

    it('turns the guard off with *', async () => {
      const off = parseAllowList('*');
      expect(await get(`http://localhost:${allowed.port}/json`, { allow: off })).toMatchObject({ kind: 'succeeded' });
      expect(await get(`${F()}/open`, { allow: off })).toMatchObject({ kind: 'succeeded', output: { body: { served: '127.0.0.2' } } });
      expect(forbidden.calls).toEqual(['/open']);
      forbidden.calls.length = 0;
    });
  });
});
