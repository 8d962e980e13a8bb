import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CommandServiceError, CommandServiceUnavailable, isStopAnswer } from './command-port';
import { HttpCommandClient } from './http-command-client';

/** The HTTP adapter against a local server that answers like the command service would. */
describe('HttpCommandClient', () => {
  let server: http.Server;
  let base: string;
  const seen: { method: string; url: string; token: string | undefined; body: string }[] = [];
  let answer: (url: string, n: number) => { status: number; body: unknown };

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', token: req.headers['x-internal-token'] as string | undefined, body });
        const a = answer(req.url ?? '', seen.filter((s) => s.url === req.url).length);
        res.writeHead(a.status, { 'content-type': 'application/json' }).end(typeof a.body === 'string' ? a.body : JSON.stringify(a.body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  beforeEach(() => {
    seen.length = 0;
  });

  const client = (over: Partial<ConstructorParameters<typeof HttpCommandClient>[0]> = {}) =>
    new HttpCommandClient({ baseUrl: `${base}/`, token: 'secret-token-0123456789', timeoutMs: 1000, retryBaseMs: 5, ...over });

  const execution = {
    runId: 'r1', projectId: 'p', flowId: 'f', flowVersionId: 'v', status: 'RUNNING', attempt: 1, startTime: '2024-01-01T00:00:00.000Z',
    parentRunId: null, failParentOnFailure: false, steps: [{ name: 's', type: 'transform', settings: {} }], trigger: { a: 1 },
    results: {}, pause: null, purged: false,
  };

  it('sends the internal token and JSON, and reads the answers it relies on', async () => {
    answer = (url) =>
      url.endsWith('/execution') ? { status: 200, body: { ...execution, runningSince: '2024-01-02T00:00:00.000Z' } }
      : url.endsWith('/lease') ? { status: 200, body: { acquired: true, holder: 'w', expiresAt: '2024-01-01T00:00:10.000Z' } }
      : url.endsWith('/claim-expired') ? { status: 200, body: { runIds: ['r1', 'r2'] } }
      : url.endsWith('/pause') ? { status: 200, body: { runId: 'r1', version: 4, status: 'PAUSED', eventsAppended: 1, requestId: 'req_1' } }
      : { status: 200, body: { runId: 'r1', version: 3, status: 'RUNNING', eventsAppended: 1 } };
    const c = client();
    expect(await c.getExecution('r 1')).toMatchObject({ runId: 'r1', runningSince: '2024-01-02T00:00:00.000Z', trigger: { a: 1 } });
    expect(await c.acquireLease('r1', 'w', 3000)).toEqual({ acquired: true, holder: 'w', expiresAt: '2024-01-01T00:00:10.000Z' });
    expect(await c.claimExpired('w', 3000, 5)).toEqual(['r1', 'r2']);
    expect((await c.pause('r1', { stepName: 's', workerId: 'w' })).requestId).toBe('req_1');
    await c.startStep('r1', 'step/1', { stepType: 'http', workerId: 'w' });
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'GET /internal/runs/r%201/execution',
      'POST /internal/runs/r1/lease',
      'POST /internal/leases/claim-expired',
      'POST /internal/runs/r1/pause',
      'POST /internal/runs/r1/steps/step%2F1/start',
    ]);
    expect(seen.every((s) => s.token === 'secret-token-0123456789')).toBe(true);
    expect(JSON.parse(seen[2].body)).toEqual({ workerId: 'w', ttlMs: 3000, limit: 5 });
  });

  it('answers null for an unknown run, and a CommandServiceError with the envelope for a refusal', async () => {
    answer = (url) =>
      url.endsWith('/execution') ? { status: 404, body: { statusCode: 404, code: 'ENTITY_NOT_FOUND', params: { entityType: 'flow_run' } } }
      : { status: 409, body: { statusCode: 409, code: 'LEASE_LOST', params: { holder: 'other' } } };
    const c = client();
    expect(await c.getExecution('nope')).toBeNull();
    const err = await c.finishStep('r1', 's', { status: 'SUCCEEDED', durationMs: 1, workerId: 'w' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandServiceError);
    expect(err).toMatchObject({ status: 409, code: 'LEASE_LOST', params: { holder: 'other' } });
    expect(isStopAnswer(err)).toBe(true);
    expect(seen.filter((s) => s.url.endsWith('/finish'))).toHaveLength(1); // a refusal is not retried
  });

  it('retries a report on 503 and succeeds', async () => {
    answer = (_url, n) => (n < 3 ? { status: 503, body: { statusCode: 503, code: 'SERVICE_UNAVAILABLE', params: {} } } : { status: 200, body: { runId: 'r1', version: 2, status: 'RUNNING', eventsAppended: 1 } });
    expect(await client().succeed('r1', { workerId: 'w' })).toMatchObject({ version: 2 });
    expect(seen).toHaveLength(3);
  });

  it('gives up after its retries with CommandServiceError (503), not a stop answer', async () => {
    answer = () => ({ status: 503, body: { statusCode: 503, code: 'SERVICE_UNAVAILABLE', params: {} } });
    const err = await client({ retries: 2 }).succeed('r1', {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
    expect(isStopAnswer(err)).toBe(false);
    expect(seen).toHaveLength(3);
  });

  it('never repeats a child trigger that reached the command service', async () => {
    answer = () => ({ status: 503, body: { statusCode: 503, code: 'SERVICE_UNAVAILABLE', params: {} } });
    await expect(client().triggerRun('f', { projectId: 'p', payload: {} })).rejects.toMatchObject({ status: 503 });
    expect(seen).toHaveLength(1);
  });

  it('reports an unreachable command service and a contract-breaking answer as CommandServiceUnavailable', async () => {
    const down = new HttpCommandClient({ baseUrl: 'http://127.0.0.1:1', token: 't', timeoutMs: 500, retries: 1, retryBaseMs: 5 });
    await expect(down.getExecution('r1')).rejects.toBeInstanceOf(CommandServiceUnavailable);
    answer = () => ({ status: 200, body: { runId: 'r1' } });
    await expect(client().getExecution('r1')).rejects.toThrow(/breaks the contract/);
    answer = () => ({ status: 200, body: 'not json' });
    await expect(client().acquireLease('r1', 'w', 1000)).rejects.toBeInstanceOf(CommandServiceUnavailable);
  });
});
