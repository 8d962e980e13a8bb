import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseAllowList } from './destinations';
import { httpStep } from './http';
import type { StepContext } from './types';

/** A local HTTP server standing in for the outside world a flow calls. */
describe('http step', () => {
  const calls: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  let server: http.Server;
  let base: string;
  let closedPort: number;
  const timers: NodeJS.Timeout[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        calls.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        if (req.url === '/json') return void res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'x-custom': 'yes' }).end(JSON.stringify({ hello: 'world' }));
        if (req.url === '/problem') return void res.writeHead(200, { 'content-type': 'application/problem+json' }).end('{"title":"x"}');
        if (req.url === '/text') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('plain text');
        if (req.url === '/echo') return void res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ body, type: req.headers['content-type'] ?? null }));
        if (req.url === '/bad-json') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{not json');
        if (req.url === '/empty') return void res.writeHead(204).end();
        if (req.url === '/unavailable') return void res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"try later"}');
        if (req.url === '/slow') return void timers.push(setTimeout(() => res.writeHead(200).end('late'), 2000));
        if (req.url === '/big') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(5000));
        res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // A port that refuses: listen, take the port, close.
    const tmp = http.createServer();
    await new Promise<void>((resolve) => tmp.listen(0, '127.0.0.1', () => resolve()));
    closedPort = (tmp.address() as AddressInfo).port;
    await new Promise<void>((resolve) => tmp.close(() => resolve()));
  });
  afterAll(async () => {
    for (const t of timers) clearTimeout(t);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const ctx = (signal = new AbortController().signal): StepContext => ({ runId: 'r1', stepName: 's1', signal });
  // The local target is on loopback, which the SSRF guard blocks unless allowed (see http-guard.spec.ts).
  const step = httpStep({ timeoutMs: 500, maxResponseBytes: 1000, allow: parseAllowList('127.0.0.1') });

  it('answers { status, headers, body } with a JSON body parsed', async () => {
    const out = await step({ method: 'get', url: `${base}/json` }, ctx());
    expect(out).toEqual({
      kind: 'succeeded',
      output: { status: 200, headers: expect.objectContaining({ 'x-custom': 'yes' }), body: { hello: 'world' } },
    });
    expect(await step({ method: 'GET', url: `${base}/problem` }, ctx())).toMatchObject({ output: { body: { title: 'x' } } });
  });

  it('keeps a body that is not JSON (or only claims to be) as text, and an empty one as empty', async () => {
    expect(await step({ method: 'GET', url: `${base}/text` }, ctx())).toMatchObject({ kind: 'succeeded', output: { body: 'plain text' } });
    expect(await step({ method: 'GET', url: `${base}/bad-json` }, ctx())).toMatchObject({ kind: 'succeeded', output: { body: '{not json' } });
    expect(await step({ method: 'DELETE', url: `${base}/empty` }, ctx())).toMatchObject({ kind: 'succeeded', output: { status: 204, body: '' } });
  });

  it('sends an object body as JSON and a string body as it is, with the given headers', async () => {
    const json = await step({ method: 'POST', url: `${base}/echo`, body: { a: 1, list: [true] }, headers: { 'x-trace': 'abc', 'x-n': 5 } }, ctx());
    expect(json).toMatchObject({ kind: 'succeeded', output: { status: 201, body: { body: '{"a":1,"list":[true]}', type: 'application/json' } } });
    expect(calls.at(-1)?.headers).toMatchObject({ 'x-trace': 'abc', 'x-n': '5' });

    const text = await step({ method: 'PUT', url: `${base}/echo`, body: 'raw', headers: { 'Content-Type': 'application/xml' } }, ctx());
    expect(text).toMatchObject({ output: { body: { body: 'raw', type: 'application/xml' } } });
  });

  it('fails the step on a status outside 2xx, with the status in the error and the answer as output', async () => {
    const out = await step({ method: 'GET', url: `${base}/unavailable` }, ctx());
    expect(out).toEqual({
      kind: 'failed',
      error: { message: `GET ${base}/unavailable answered 503`, status: 503 },
      output: { status: 503, headers: expect.any(Object), body: { error: 'try later' } },
    });
    expect(await step({ method: 'GET', url: `${base}/nowhere` }, ctx())).toMatchObject({ kind: 'failed', error: { status: 404 } });
  });

  it('fails the step on a network error, without a status', async () => {
    const out = await step({ method: 'GET', url: `http://127.0.0.1:${closedPort}/x` }, ctx());
    expect(out.kind).toBe('failed');
    if (out.kind !== 'failed') return;
    expect(out.error.message).toMatch(/ECONNREFUSED/);
    expect(out.error.status).toBeUndefined();
  });

  it('fails the step when the request takes longer than the per-request timeout', async () => {
    const started = Date.now();
    const out = await step({ method: 'GET', url: `${base}/slow` }, ctx());
    expect(out).toMatchObject({ kind: 'failed', error: { message: expect.stringMatching(/timed out after 500 ms/) } });
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('fails the step when the answer is larger than the limit', async () => {
    expect(await step({ method: 'GET', url: `${base}/big` }, ctx())).toMatchObject({
      kind: 'failed',
      error: { message: expect.stringMatching(/larger than 1000 bytes/) },
    });
  });

  it('fails the step on settings that do not fit, naming the setting', async () => {
    expect(await step({ method: 'FETCH', url: `${base}/json` }, ctx())).toMatchObject({ kind: 'failed', error: { message: expect.stringMatching(/^invalid settings\.method/) } });
    expect(await step({ method: 'GET', url: 'ftp://x/y' }, ctx())).toMatchObject({ kind: 'failed', error: { message: expect.stringMatching(/^invalid settings\.url/) } });
    expect(await step({ method: 'GET' }, ctx())).toMatchObject({ kind: 'failed', error: { message: expect.stringMatching(/^invalid settings\.url/) } });
    expect(await step({ method: 'GET', url: `${base}/json`, body: { a: 1 } }, ctx())).toMatchObject({
      kind: 'failed',
      error: { message: expect.stringMatching(/GET request cannot have a body/) },
    });
  });

  it("rejects with the driver's abort reason instead of failing the step", async () => {
    const ac = new AbortController();
    const pending = step({ method: 'GET', url: `${base}/slow` }, ctx(ac.signal));
    setTimeout(() => ac.abort(new Error('lease lost')), 50);
    await expect(pending).rejects.toThrow('lease lost');
  });
});
