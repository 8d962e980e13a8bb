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
  describe('with batchReports', () => {
    const batchingClient = (over: Partial<ConstructorParameters<typeof HttpCommandClient>[0]> = {}) =>
      client({ batchReports: { maxReports: 3, maxChars: 2000, maxInFlight: 1 }, ...over });
    const okFor = (r: { runId: string; type: string }) =>
      r.runId === 'refused'
        ? { error: { statusCode: 409, code: 'LEASE_LOST', params: { holder: 'other' } } }
        : { ok: { runId: r.runId, version: 2, status: r.type === 'pause' ? 'PAUSED' : 'RUNNING', eventsAppended: 1, ...(r.type === 'pause' ? { requestId: 'req_x' } : {}) } };
    const answerBatches = () => {
      answer = (url) => {
        if (url !== '/internal/reports') return { status: 404, body: { statusCode: 404, code: 'ENTITY_NOT_FOUND', params: {} } };
        const { reports } = JSON.parse(seen[seen.length - 1].body) as { reports: { runId: string; type: string }[] };
        return { status: 200, body: { results: reports.map(okFor) } };
      };
    };

    it('sends reports made at once together, in batches of at most maxReports, each caller getting its own answer', async () => {
      answerBatches();
      const c = batchingClient();
      const answers = await Promise.allSettled([
        c.startStep('r1', 's', { stepType: 'http', workerId: 'w' }),
        c.finishStep('r2', 's', { status: 'SUCCEEDED', output: { a: 1 }, durationMs: 4, workerId: 'w' }),
        c.pause('r3', { stepName: 's', workerId: 'w' }),
        c.succeed('refused', { workerId: 'w' }),
        c.fail('r5', { failedStepName: null }),
      ]);
      expect(seen.map((x) => `${x.method} ${x.url}`)).toEqual(['POST /internal/reports', 'POST /internal/reports']);
      expect(seen.map((x) => (JSON.parse(x.body) as { reports: unknown[] }).reports)).toEqual([
        [
          { type: 'startStep', runId: 'r1', stepName: 's', stepType: 'http', workerId: 'w' },
          { type: 'finishStep', runId: 'r2', stepName: 's', status: 'SUCCEEDED', output: { a: 1 }, durationMs: 4, workerId: 'w' },
          { type: 'pause', runId: 'r3', stepName: 's', workerId: 'w' },
        ],
        [
          { type: 'succeed', runId: 'refused', workerId: 'w' },
          { type: 'fail', runId: 'r5', failedStepName: null },
        ],
      ]);
      expect(answers[0]).toEqual({ status: 'fulfilled', value: { runId: 'r1', version: 2, status: 'RUNNING', eventsAppended: 1 } });
      expect(answers[2]).toMatchObject({ status: 'fulfilled', value: { status: 'PAUSED', requestId: 'req_x' } });
      const refused = answers[3] as PromiseRejectedResult;
      expect(refused.reason).toBeInstanceOf(CommandServiceError);
      expect(refused.reason).toMatchObject({ status: 409, code: 'LEASE_LOST' });
      expect(isStopAnswer(refused.reason)).toBe(true);
      expect(answers[4]).toMatchObject({ status: 'fulfilled', value: { runId: 'r5' } });
    });

    it('sends a report larger than maxChars alone, and cuts batches by size', async () => {
      answerBatches();
      const c = batchingClient();
      const big = 'x'.repeat(3000);
      await Promise.all([
        c.finishStep('r1', 's', { status: 'SUCCEEDED', output: big, durationMs: 1 }),
        c.finishStep('r2', 's', { status: 'SUCCEEDED', output: 'y'.repeat(1100), durationMs: 1 }),
        c.finishStep('r3', 's', { status: 'SUCCEEDED', output: 'z'.repeat(1100), durationMs: 1 }),
      ]);
      expect(seen.map((x) => (JSON.parse(x.body) as { reports: { runId: string }[] }).reports.map((r) => r.runId))).toEqual([['r1'], ['r2'], ['r3']]);
    });

    it('retries a batch on 503 (reports are safe to repeat), and fails every report of a batch the command service cannot take', async () => {
      let calls = 0;
      answer = () => {
        calls++;
        if (calls === 1) return { status: 503, body: { statusCode: 503, code: 'SERVICE_UNAVAILABLE', params: {} } };
        const { reports } = JSON.parse(seen[seen.length - 1].body) as { reports: { runId: string; type: string }[] };
        return { status: 200, body: { results: reports.map(okFor) } };
      };
      const c = batchingClient();
      const both = await Promise.all([c.succeed('r1', {}), c.succeed('r2', {})]);
      expect(both.map((r) => r.runId)).toEqual(['r1', 'r2']);
      expect(seen).toHaveLength(2);

      seen.length = 0;
      answer = () => ({ status: 200, body: { results: [] } });
      const broken = await Promise.allSettled([c.succeed('r1', {}), c.succeed('r2', {})]);
      expect(broken.map((b) => (b as PromiseRejectedResult).reason)).toEqual([expect.any(CommandServiceUnavailable), expect.any(CommandServiceUnavailable)]);
      answer = () => ({ status: 400, body: { statusCode: 400, code: 'VALIDATION', params: { field: 'reports.0.stepName' } } });
      const invalid = await Promise.allSettled([c.startStep('r1', 's', { stepType: 'http' })]);
      expect((invalid[0] as PromiseRejectedResult).reason).toMatchObject({ status: 400, code: 'VALIDATION' });
    });

    it('keeps at most maxInFlight calls open; what arrives meanwhile goes in the next call', async () => {
      answerBatches();
      const c = batchingClient({ batchReports: { maxReports: 100, maxChars: 100000, maxInFlight: 1 } });
      const first = c.startStep('r0', 's', { stepType: 'http' });
      await new Promise((r) => setImmediate(r)); // the first call leaves alone
      const rest = Array.from({ length: 10 }, (_, i) => c.startStep(`r${i + 1}`, 's', { stepType: 'http' }));
      await Promise.all([first, ...rest]);
      expect(seen.map((x) => (JSON.parse(x.body) as { reports: unknown[] }).reports.length)).toEqual([1, 10]);
    });
  });
});
